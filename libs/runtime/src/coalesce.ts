// Group commit. Callers hand in items and wait until a flush that holds them has finished; one flush runs at a
// time, and the items handed in meanwhile go together into the next one. There is no timer: a lone caller's
// items are flushed at once, and under load the batches grow by themselves (as PostgreSQL's commit_delay and
// Kafka's producer batching do, without their wait).

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class Coalescer<T> {
  private pending: T[] = [];
  private waiters: Waiter[] = [];
  private isFlushing = false;

  /** `flush` receives the items in the order they were handed in; its failure fails every caller it held. */
  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  /** Resolves once `items` are flushed; rejects with the flush's error if their flush failed. */
  submit(items: readonly T[]): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
    for (const item of items) this.pending.push(item);
    if (!this.isFlushing) void this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    this.isFlushing = true;
    while (this.waiters.length > 0) {
      const items = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        await this.flush(items);
        for (const waiter of waiters) waiter.resolve();
      } catch (err) {
        for (const waiter of waiters) waiter.reject(err);
      }
    }
    this.isFlushing = false;
  }
}
