// Start and stop the same way everywhere: a handle's stop runs every step once, reports each failure, and a
// second call returns the same promise.
import type { Logger } from 'pino';

export interface ServiceHandle {
  readonly name: string;
  /** /readyz → 503, take no new work, finish what is in flight. */
  drain(): Promise<void>;
  /** Drain if needed, then release everything. Idempotent; every step runs even when one fails. */
  stop(): Promise<void>;
}

export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => {
    promise ??= fn();
    return promise;
  };
}

/** Runs each cleanup step in order; a failing step is logged and the rest still run. */
export async function runSteps(log: Logger, steps: Array<[string, () => unknown]>): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.warn({ err, step: name }, 'shutdown step failed');
    }
  }
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff with equal jitter: a wait between half and all of min(max, base·2^attempt). */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
