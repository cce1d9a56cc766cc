import { describe, expect, it } from 'vitest';
import { Coalescer, togetherOrEachAlone } from '#runtime';

/** A flush that records its batches and finishes only when the test says so. */
function heldFlush() {
  const batches: number[][] = [];
  const releases: Array<(err?: Error) => void> = [];
  const flush = (works: number[]) => {
    batches.push(works);
    return new Promise<undefined>((resolve, reject) =>
      releases.push((err) => (err ? reject(err) : resolve(undefined))),
    );
  };
  return { batches, releases, flush };
}

describe('Coalescer', () => {
  it('flushes what is handed in within one turn together, and what arrives during a flush in the next one, in order', async () => {
    const { batches, releases, flush } = heldFlush();
    const coalescer = new Coalescer(flush);
    const first = coalescer.submit(1);
    const alsoFirst = coalescer.submit(2);
    expect(batches).toEqual([]); // the rest of this turn's works may still come
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1, 2]]);
    const second = coalescer.submit(3);
    const third = coalescer.submit(4);
    expect(batches).toEqual([[1, 2]]); // one flush at a time
    releases[0]!();
    await Promise.all([first, alsoFirst]);
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    releases[1]!();
    await Promise.all([second, third]);
  });

  it('fails exactly the callers of a failed flush, and carries on with the next one', async () => {
    const { batches, releases, flush } = heldFlush();
    const coalescer = new Coalescer(flush);
    const first = coalescer.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const second = coalescer.submit(2);
    releases[0]!(new Error('redis away'));
    await expect(first).rejects.toThrow('redis away');
    expect(batches).toEqual([[1], [2]]);
    releases[1]!();
    await expect(second).resolves.toBeUndefined();
  });

  it('together-or-each-alone fails only the work that fails by itself', async () => {
    const handled: number[][] = [];
    const coalescer = new Coalescer(
      togetherOrEachAlone(async (works: number[]) => {
        handled.push(works);
        if (works.includes(13)) throw new Error(`poison among ${works.join(',')}`);
      }),
    );
    const outcomes = await Promise.allSettled([
      coalescer.submit(1),
      coalescer.submit(13),
      coalescer.submit(2),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('poison among 13'));
    expect(handled).toEqual([[1, 13, 2], [1], [13], [2]]);
  });
});
