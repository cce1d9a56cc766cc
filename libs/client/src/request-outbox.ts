// Requests that record something (notify, handle) sent and not yet answered. Each keeps its req_id for life, so
// re-sending it after a reconnect or a 503 is safe: the edge answers a repeated notify req_id with the first
// reply and records no second event (SPEC §3), and the same device repeating the same handle gets code 0 again
// (SPEC §10). Owns the per-request timers (503 retry, deadline); the client decides when a socket can take a frame.
import type { HandleFrame, NotifyFrame, ReplyFrame } from '#events';
import { type Deferred, deferred } from './deferred';
import { ClientError } from './errors';
import { type BackoffPolicy, backoffDelayMs } from './reconnect';
import {
  type HandleResult,
  handleOutcomeOf,
  type NotifyResult,
  notifyOutcomeOf,
  type RequestOutcome,
} from './wire';

/** A handle as the client sends it: always with a req_id, so its reply can be matched. */
export type HandleRequest = HandleFrame & { req_id: string };

export type RequestOp = 'notify' | 'handle';

interface Pending<T> extends Deferred<T> {
  readonly reqId: string;
  readonly text: string;
  readonly bytes: number;
  /** queued: not on the current connection; sent: written, unanswered; retrying: waiting after a 503. */
  state: 'queued' | 'sent' | 'retrying';
  retries: number;
  retryTimer: NodeJS.Timeout | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
}

type PendingRequest =
  | (Pending<NotifyResult> & { readonly op: 'notify' })
  | (Pending<HandleResult> & { readonly op: 'handle'; readonly id: string });

export interface RequestOutboxOptions {
  /** Writes the text on the logged-in connection; false when there is none (the request stays queued). */
  send(text: string): boolean;
  backoff: BackoffPolicy;
  random: () => number;
  /** The edge's frame limit (EDGE_MAX_FRAME_BYTES): a bigger request is refused here, not by a 1009 close. */
  maxFrameBytes: number;
}

export class RequestOutbox {
  /** By req_id, in the order they were made: re-sends go out in that order. */
  private readonly pending = new Map<string, PendingRequest>();

  constructor(private readonly options: RequestOutboxOptions) {}

  get size(): number {
    return this.pending.size;
  }

  /** How many requests with this op are unanswered. */
  count(op: RequestOp): number {
    let count = 0;
    for (const entry of this.pending.values()) if (entry.op === op) count += 1;
    return count;
  }

  /**
   * Sends a request now if a connection can take it, otherwise when one can. A req_id that is already
   * pending with the same op returns the same promise: the edge would answer it once anyway.
   * @param timeoutMs reject with TIMEOUT after this long without a final answer; Infinity waits forever.
   */
  submit(frame: NotifyFrame, timeoutMs: number): Promise<NotifyResult>;
  submit(frame: HandleRequest, timeoutMs: number): Promise<HandleResult>;
  submit(frame: NotifyFrame | HandleRequest, timeoutMs: number): Promise<NotifyResult | HandleResult> {
    const existing = this.pending.get(frame.req_id);
    if (existing?.op === frame.op) return existing.promise;
    if (existing) {
      return Promise.reject(
        new ClientError(
          'REFUSED',
          { reqId: frame.req_id },
          `req_id ${frame.req_id} is already used by a pending ${existing.op}`,
        ),
      );
    }
    const text = JSON.stringify(frame);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxFrameBytes) {
      return Promise.reject(
        new ClientError(
          'FRAME_TOO_LARGE',
          { reqId: frame.req_id },
          `${frame.op} ${frame.req_id} is ${bytes} bytes, over the ${this.options.maxFrameBytes}-byte frame limit`,
        ),
      );
    }
    const base = {
      reqId: frame.req_id,
      text,
      bytes,
      state: 'queued' as const,
      retries: 0,
      retryTimer: undefined,
      deadlineTimer: undefined,
    };
    const entry: PendingRequest =
      frame.op === 'notify'
        ? { ...base, op: 'notify', ...deferred<NotifyResult>() }
        : { ...base, op: 'handle', id: frame.id, ...deferred<HandleResult>() };
    if (Number.isFinite(timeoutMs)) {
      entry.deadlineTimer = setTimeout(() => this.expire(entry, timeoutMs), timeoutMs);
    }
    this.pending.set(entry.reqId, entry);
    this.trySend(entry);
    return entry.promise;
  }

  /** A reply arrived; true when it answered a pending request. */
  settle(reply: ReplyFrame): boolean {
    const entry = reply.req_id === undefined ? undefined : this.pending.get(reply.req_id);
    if (!entry) return false;
    if (entry.op === 'notify') this.conclude(entry, notifyOutcomeOf(reply, entry.reqId));
    else this.conclude(entry, handleOutcomeOf(reply, entry.id));
    return true;
  }

  /** A connection just logged in: send every request it has not seen, oldest first. */
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
   * The edge closed with 1009 (a frame over its limit). The largest request on the wire is the likely
   * culprit; re-sending it would close the next connection too, so it is refused.
   */
  refuseLargestSent(err: (reqId: string) => Error): void {
    let largest: PendingRequest | undefined;
    for (const entry of this.pending.values()) {
      if (entry.state === 'sent' && (!largest || entry.bytes > largest.bytes)) largest = entry;
    }
    if (largest) this.finish(largest).reject(err(largest.reqId));
  }

  rejectAll(err: Error): void {
    for (const entry of [...this.pending.values()]) this.finish(entry).reject(err);
  }

  private conclude<T>(entry: PendingRequest & Pending<T>, outcome: RequestOutcome<T>): void {
    switch (outcome.kind) {
      case 'done':
        this.finish(entry).resolve(outcome.value);
        return;
      case 'retry':
        this.retryLater(entry);
        return;
      case 'refused':
        this.finish(entry).reject(
          new ClientError('REFUSED', { code: outcome.code, msg: outcome.msg, reqId: entry.reqId }),
        );
        return;
      default: {
        const unreachable: never = outcome;
        throw new Error(`unknown ${entry.op} outcome ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private trySend(entry: PendingRequest): void {
    entry.state = this.options.send(entry.text) ? 'sent' : 'queued';
  }

  private retryLater(entry: PendingRequest): void {
    entry.state = 'retrying';
    const delayMs = backoffDelayMs(entry.retries++, this.options.backoff, this.options.random);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (this.pending.get(entry.reqId) === entry) this.trySend(entry);
    }, delayMs);
  }

  private expire(entry: PendingRequest, timeoutMs: number): void {
    entry.deadlineTimer = undefined;
    const why = entry.retries > 0 ? 'the event log stayed unavailable' : 'no reply';
    this.finish(entry).reject(
      new ClientError(
        'TIMEOUT',
        { reqId: entry.reqId },
        `${entry.op} ${entry.reqId}: ${why} within ${timeoutMs} ms; it may or may not be recorded — ` +
          'send it again with the same req_id to find out',
      ),
    );
  }

  private finish<E extends PendingRequest>(entry: E): E {
    this.pending.delete(entry.reqId);
    clearTimeout(entry.retryTimer);
    clearTimeout(entry.deadlineTimer);
    return entry;
  }
}
