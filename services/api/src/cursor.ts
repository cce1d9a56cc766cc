// ◇ Keyset pagination (SPEC §6): an opaque cursor is the sort key of the last item of a page, base64url JSON.
// Pure: no I/O. A client treats the cursor as opaque, so its inside may change between versions.
import { BrokerError } from '#events';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** The sort key a cursor carries; INVALID_INPUT for anything this API did not hand out. */
export function decodeCursor(cursor: string, arity: number): string[] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BrokerError('INVALID_INPUT', 'cursor is not one this API handed out');
  }
  if (!Array.isArray(key) || key.length !== arity || !key.every((part) => typeof part === 'string')) {
    throw new BrokerError('INVALID_INPUT', 'cursor is not one this API handed out');
  }
  return key;
}

/**
 * One page from rows fetched with `limit + 1`: the extra row only says that another page exists, so the last
 * page answers `next_cursor: null` without a second query.
 */
export function pageOf<R, T>(
  rows: readonly R[],
  limit: number,
  keyOf: (row: R) => readonly string[],
  view: (row: R) => T,
): Page<T> {
  const hasMore = rows.length > limit;
  const shown = hasMore ? rows.slice(0, limit) : rows;
  const last = shown.at(-1);
  return {
    items: shown.map(view),
    next_cursor: hasMore && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
