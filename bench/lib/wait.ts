// Waiting on a condition with a deadline. A benchmark reports a condition that never came (as "not within N s")
// instead of failing the whole run, so the result says false and the caller records it.
import { delay } from '#runtime';

export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await delay(intervalMs);
  }
  return condition();
}

export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
