import { describe, expect, it } from 'vitest';
import { RecentIds } from '#client';

describe('when message ids are remembered', () => {
  it('reports an id as new once, and as a repeat after that', () => {
    const ids = new RecentIds(3);
    expect(ids.remember('a')).toBe(true);
    expect(ids.remember('a')).toBe(false);
    expect(ids.has('a')).toBe(true);
    expect(ids.has('b')).toBe(false);
  });

  it('forgets the oldest id when over capacity, and only that one', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) ids.remember(id);
    expect(ids.size).toBe(3);
    expect(ids.has('a')).toBe(false);
    expect(['b', 'c', 'd'].every((id) => ids.has(id))).toBe(true);
  });

  it('keeps the last 10,000 ids by default', () => {
    const ids = new RecentIds();
    for (let i = 0; i < 10_001; i++) ids.remember(`m${i}`);
    expect(ids.size).toBe(10_000);
    expect(ids.has('m0')).toBe(false);
    expect(ids.has('m1')).toBe(true);
    expect(ids.has('m10000')).toBe(true);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RecentIds(0)).toThrow(RangeError);
    expect(() => new RecentIds(1.5)).toThrow(RangeError);
  });
});
