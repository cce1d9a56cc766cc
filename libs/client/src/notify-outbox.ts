// Notifies sent and not yet answered. Each keeps its req_id for life, so re-sending it after a reconnect or a
// 503 is safe: the edge answers a repeated req_id with the first reply and records no second event (SPEC §3).
// Owns the per-notify timers (503 retry, deadline); the client decides when a socket can take a frame.
import type { NotifyFrame, ReplyFrame } from '#events';
import { ClientError } from './errors';
import { type BackoffPolicy, backoffDelayMs } from './reconnect';
import { notifyOutcomeOf } from './wire';

export interface NotifyResult {
  /** The NotifyRequested event the edge recorded. */
  event_id: string;
  /** The request id, generated when the caller gave none; the same one on every re-send. */
  req_id: string;
}

interface PendingNotify {
  readonly reqId: string;
  readonly text: string;
  readonly bytes: number;
  /** queued: not on the current connection; sent: written, unanswered; retrying: waiting after a 503. */
  state: 'queued' | 'sent' | 'retrying';
  retries: number;
  retryTimer: NodeJS.Timeout | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
  readonly promise: Promise<NotifyResult>;
  resolve(result: NotifyResult): void;
  reject(err: Error): void;
}

export interface NotifyOutboxOptions {
  /** Writes the text on the logged-in connection; false when there is none (the notify stays queued). */
  send(text: string): boolean;
  backoff: BackoffPolicy;
  random: () => number;
  /** The edge's frame limit (EDGE_MAX_FRAME_BYTES): a bigger notify is refused here, not by a 1009 close. */
  maxFrameBytes: number;
}

export class NotifyOutbox {
  private readonly pending = new Map<string, PendingNotify>();

  constructor(private readonly options: NotifyOutboxOptions) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Sends a notify now if a connection can take it, otherwise when one can. A req_id that is already
   * pending returns the same promise: the edge would answer it once anyway.
   * @param timeoutMs reject with TIMEOUT after this long without a final answer; Infinity waits forever.
   */
  submit(frame: NotifyFrame, timeoutMs: number): Promise<NotifyResult> {
    const existing = this.pending.get(frame.req_id);
    if (existing) return existing.promise;
    const text = JSON.stringify(frame);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxFrameBytes) {
      return Promise.reject(
        new ClientError(
          'FRAME_TOO_LARGE',
          { reqId: frame.req_id },
          `notify ${frame.req_id} is ${bytes} bytes, over the ${this.options.maxFrameBytes}-byte frame limit`,
        ),
      );
    }
    let resolve!: (result: NotifyResult) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<NotifyResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: PendingNotify = {
      reqId: frame.req_id,
      text,
      bytes,
      state: 'queued',
      retries: 0,
      retryTimer: undefined,
      deadlineTimer: undefined,
      promise,
      resolve,
      reject,
    };
    if (Number.isFinite(timeoutMs)) {
      entry.deadlineTimer = setTimeout(() => this.expire(entry, timeoutMs), timeoutMs);
    }
    this.pending.set(entry.reqId, entry);
    this.trySend(entry);
    return promise;
  }

  /** A reply arrived; true when it answered a pending notify. */
  settle(reply: ReplyFrame): boolean {
    const entry = reply.req_id === undefined ? undefined : this.pending.get(reply.req_id);
    if (!entry) return false;
    const outcome = notifyOutcomeOf(reply);
    switch (outcome.kind) {
      case 'recorded':
        this.finish(entry).resolve({ event_id: outcome.eventId, req_id: entry.reqId });
        return true;
      case 'retry':
        this.retryLater(entry);
        return true;
      case 'refused':
        this.finish(entry).reject(
          new ClientError('REFUSED', { code: outcome.code, msg: outcome.msg, reqId: entry.reqId }),
        );
        return true;
      default: {
        const unreachable: never = outcome;
        throw new Error(`unknown notify outcome ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** A connection just logged in: send every notify it has not seen, oldest first. */
  sendUnanswered(): void {
    for (const entry of this.pending.values()) {
      if (entry.state !== 'retrying') entry.state = 'queued';
    }
    for (const entry of this.pending.values()) {
      if (entry.state === 'queued') this.trySend(entry);
    }
  }

  /** The connection is gone: nothing is on the wire any more. */
  connectionLost(): void {
    for (const entry of this.pending.values()) {
      if (entry.state === 'sent') entry.state = 'queued';
    }
  }

  /**
   * The edge closed with 1009 (a frame over its limit). The largest notify on the wire is the likely
   * culprit; re-sending it would close the next connection too, so it is refused.
   */
  refuseLargestSent(err: (reqId: string) => Error): void {
    let largest: PendingNotify | undefined;
    for (const entry of this.pending.values()) {
      if (entry.state === 'sent' && (!largest || entry.bytes > largest.bytes)) largest = entry;
    }
    if (largest) this.finish(largest).reject(err(largest.reqId));
  }

  rejectAll(err: Error): void {
    for (const entry of [...this.pending.values()]) this.finish(entry).reject(err);
  }

  private trySend(entry: PendingNotify): void {
    entry.state = this.options.send(entry.text) ? 'sent' : 'queued';
  }

  private retryLater(entry: PendingNotify): void {
    entry.state = 'retrying';
    const delayMs = backoffDelayMs(entry.retries++, this.options.backoff, this.options.random);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (this.pending.get(entry.reqId) === entry) this.trySend(entry);
    }, delayMs);
  }

  private expire(entry: PendingNotify, timeoutMs: number): void {
    entry.deadlineTimer = undefined;
    const why = entry.retries > 0 ? 'the event log stayed unavailable' : 'no reply';
    this.finish(entry).reject(
      new ClientError(
        'TIMEOUT',
        { reqId: entry.reqId },
        `notify ${entry.reqId}: ${why} within ${timeoutMs} ms; it may or may not be recorded — ` +
          'send it again with the same req_id to find out',
      ),
    );
  }

  private finish(entry: PendingNotify): PendingNotify {
    this.pending.delete(entry.reqId);
    clearTimeout(entry.retryTimer);
    clearTimeout(entry.deadlineTimer);
    return entry;
  }
}
