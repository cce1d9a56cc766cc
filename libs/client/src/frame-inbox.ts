// The frames a client received, kept for `next()` and `messages()`: a caller awaits the next matching frame
// whether it arrived before or after the call, so a test never races the socket. No sockets here; the only
// timer is next()'s own timeout.
import type { MessageFrame } from '#events';
import { ClientError } from './errors';
import type { FrameOf, ServerFrame } from './wire';

interface Waiter {
  op: string;
  predicate: ((frame: ServerFrame) => boolean) | undefined;
  resolve(frame: ServerFrame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class FrameInbox {
  /** Frames no next() has taken yet, oldest first. */
  private unclaimed: ServerFrame[] = [];
  /** Every message handed to the app, oldest first. */
  private received: MessageFrame[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | undefined;

  /** @param limit how many frames each list keeps (the oldest go first); 0 keeps none. */
  constructor(private readonly limit: number) {}

  /** A message was handed to the app: messages() lists it, and next('message') can take it. */
  pushMessage(frame: MessageFrame): void {
    if (this.limit > 0) this.received = bounded(this.received, frame, this.limit);
    this.push(frame);
  }

  /** A frame arrived: the first waiter it matches takes it, otherwise it waits for a next() call. */
  push(frame: ServerFrame): void {
    for (let i = 0; i < this.waiters.length; i++) {
      const waiter = this.waiters[i]!;
      let matched: boolean;
      try {
        matched = matches(waiter, frame);
      } catch (err) {
        this.settle(i--, waiter).reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (matched) {
        this.settle(i, waiter).resolve(frame);
        return;
      }
    }
    if (this.limit > 0) this.unclaimed = bounded(this.unclaimed, frame, this.limit);
  }

  /** The oldest unclaimed frame with this op (and passing the predicate), or the next one to arrive. */
  next<Op extends string>(
    op: Op,
    predicate: ((frame: FrameOf<Op>) => boolean) | undefined,
    timeoutMs: number,
  ): Promise<FrameOf<Op>> {
    // FrameOf<Op> is exactly the frame type whose op is Op; the op check in matches() makes the casts sound.
    const test = predicate as ((frame: ServerFrame) => boolean) | undefined;
    const index = this.unclaimed.findIndex((frame) => matches({ op, predicate: test }, frame));
    if (index >= 0) {
      const [frame] = this.unclaimed.splice(index, 1);
      return Promise.resolve(frame as FrameOf<Op>);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<FrameOf<Op>>((resolve, reject) => {
      const waiter: Waiter = {
        op,
        predicate: test,
        resolve: (frame) => resolve(frame as FrameOf<Op>),
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((other) => other !== waiter);
          reject(new ClientError('TIMEOUT', {}, `no "${op}" frame within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** The messages handed to the app so far (each id once), oldest first. */
  messages(): MessageFrame[] {
    return [...this.received];
  }

  /** The client is closed for good: waiting callers get the reason, and so does every later next() that
   *  finds nothing buffered. */
  fail(err: Error): void {
    this.failure ??= err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
  }

  private settle(index: number, waiter: Waiter): Waiter {
    this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    return waiter;
  }
}

function matches(waiter: Pick<Waiter, 'op' | 'predicate'>, frame: ServerFrame): boolean {
  return frame.op === waiter.op && (waiter.predicate === undefined || waiter.predicate(frame));
}

// Trimming in slices of an eighth keeps pushes amortised O(1) instead of shifting the array on every frame.
function bounded<T>(list: T[], item: T, limit: number): T[] {
  list.push(item);
  if (list.length <= limit + Math.max(1, limit >> 3)) return list;
  return list.slice(list.length - limit);
}
