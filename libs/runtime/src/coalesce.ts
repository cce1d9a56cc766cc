// Group commit. Callers hand in work and wait until a flush that holds it has finished; one flush runs at a time,
// and the work handed in meanwhile goes together into the next one. A flush that finds nothing in flight first
// lets the current turn of the event loop end, so that the works handed in together (the shard batches of one
// read) are flushed together. Under load the batches grow by themselves (as PostgreSQL's commit_delay and Kafka's
// linger.ms make them grow); how often the consumers read (their read interval) sets the batches at low rates.

interface Waiter<T> {
  work: T;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Flushes the works, in the order they were handed in. Throwing fails every caller of the flush; answering an
 * array fails exactly the callers whose entry is not undefined, with that entry as the error.
 */
export type Flush<T> = (works: T[]) => Promise<unknown>;

export class Coalescer<T> {
  private waiters: Array<Waiter<T>> = [];
  private isFlushing = false;

  constructor(private readonly flush: Flush<T>) {}

  /** Resolves once `work` is flushed; rejects with its flush's error. */
  submit(work: T): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.waiters.push({ work, resolve, reject });
    });
    if (!this.isFlushing) void this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    this.isFlushing = true;
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      try {
        const answer = await this.flush(waiters.map((waiter) => waiter.work));
        const errors: readonly unknown[] = Array.isArray(answer) ? answer : [];
        waiters.forEach((waiter, i) => {
          const error = errors[i];
          if (error === undefined) waiter.resolve();
          else waiter.reject(error);
        });
      } catch (err) {
        for (const waiter of waiters) waiter.reject(err);
      }
    }
    this.isFlushing = false;
  }
}

/**
 * A flush for work that is usually handled together but must fail alone: the works are handled as one; should
 * that fail, each is handled by itself, so one bad work fails only its own caller.
 */
export function togetherOrEachAlone<T>(handle: (works: T[]) => Promise<void>): Flush<T> {
  return async (works) => {
    try {
      await handle(works);
      return [];
    } catch (err) {
      if (works.length === 1) throw err;
      const errors: unknown[] = [];
      for (const work of works) {
        try {
          await handle([work]);
          errors.push(undefined);
        } catch (alone) {
          errors.push(alone ?? new Error('flush failed'));
        }
      }
      return errors;
    }
  };
}
