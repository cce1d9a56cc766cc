import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, pageOf } from '#api';
import { BrokerError } from '#events';

describe('when a page is cut from rows fetched with limit + 1', () => {
  const rows = ['a', 'b', 'c', 'd'].map((id) => ({ id }));
  const keyOf = (row: { id: string }) => [row.id];
  const view = (row: { id: string }) => row.id.toUpperCase();

  it('answers next_cursor null when no extra row came back', () => {
    expect(pageOf(rows.slice(0, 3), 3, keyOf, view)).toEqual({ items: ['A', 'B', 'C'], next_cursor: null });
    expect(pageOf([], 3, keyOf, view)).toEqual({ items: [], next_cursor: null });
  });

  it('drops the extra row and points the cursor at the last row shown', () => {
    const page = pageOf(rows, 3, keyOf, view);
    expect(page.items).toEqual(['A', 'B', 'C']);
    expect(decodeCursor(page.next_cursor!, 1)).toEqual(['c']);
  });
});

describe('when a cursor comes back', () => {
  it('decodes every key it encoded', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' }), { minLength: 1, maxLength: 3 }), (key) => {
        const cursor = encodeCursor(key);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]*$/);
        expect(decodeCursor(cursor, key.length)).toEqual(key);
      }),
    );
  });

  it('refuses a cursor it did not hand out with INVALID_INPUT', () => {
    const junk = [
      '%%%',
      Buffer.from('nope').toString('base64url'),
      encodeCursor(['only-one']),
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from('{"a":1}').toString('base64url'),
    ];
    for (const cursor of junk) {
      expect(() => decodeCursor(cursor, 2), cursor).toThrow(BrokerError);
      try {
        decodeCursor(cursor, 2);
      } catch (err) {
        expect((err as BrokerError).code).toBe('INVALID_INPUT');
      }
    }
  });
});
