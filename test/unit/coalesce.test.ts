import { describe, expect, it } from 'vitest';
import { Coalescer } from '#runtime';

/** A flush that records its batches and finishes only when the test says so. */
function heldFlush() {
  const batches: number[][] = [];
  const releases: Array<(err?: Error) => void> = [];
  const flush = (items: number[]) => {
    batches.push(items);
    return new Promise<void>((resolve, reject) => releases.push((err) => (err ? reject(err) : resolve())));
  };
  return { batches, releases, flush };
}

describe('Coalescer', () => {
  it('flushes a lone caller at once, and what arrives during a flush together in the next one, in order', async () => {
    const { batches, releases, flush } = heldFlush();
    const coalescer = new Coalescer(flush);
    const first = coalescer.submit([1]);
    expect(batches).toEqual([[1]]);
    const second = coalescer.submit([2, 3]);
    const third = coalescer.submit([4]);
    expect(batches).toEqual([[1]]); // one flush at a time
    releases[0]!();
    await first;
    expect(batches).toEqual([[1], [2, 3, 4]]);
    releases[1]!();
    await Promise.all([second, third]);
  });

  it('fails exactly the callers of a failed flush, and carries on with the next one', async () => {
    const { batches, releases, flush } = heldFlush();
    const coalescer = new Coalescer(flush);
    const first = coalescer.submit([1]);
    const second = coalescer.submit([2]);
    releases[0]!(new Error('redis away'));
    await expect(first).rejects.toThrow('redis away');
    await Promise.resolve();
    expect(batches).toEqual([[1], [2]]);
    releases[1]!();
    await expect(second).resolves.toBeUndefined();
    const third = coalescer.submit([]);
    expect(batches).toEqual([[1], [2], []]);
    releases[2]!();
    await third;
  });
});
