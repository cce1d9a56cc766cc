import { describe, expect, it } from 'vitest';
import { containsNul, parseClientFrame } from '#events';

describe('when a notify carries U+0000 (valid JSON, refused by PostgreSQL)', () => {
  it('refuses it with a clear reason instead of accepting an event that could never be projected', () => {
    const text = JSON.stringify({
      op: 'notify',
      req_id: 'r',
      table_id: 1,
      type: 'gift',
      data: { note: 'a\u0000b' },
    });
    const parsed = parseClientFrame(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error.message).toBe('strings may not contain U+0000');
    expect(!parsed.ok && parsed.op).toBe('notify');
  });

  it('refuses it in an object key as well', () => {
    const key = 'k\u0000';
    expect(containsNul({ data: { [key]: 1 } })).toBe(true);
  });

  it('accepts an escaped backslash followed by u0000, which is no NUL', () => {
    const text = JSON.stringify({
      op: 'notify',
      req_id: 'r',
      table_id: 1,
      type: 'gift',
      data: { note: '\\u0000' },
    });
    expect(parseClientFrame(text).ok).toBe(true);
  });
});
