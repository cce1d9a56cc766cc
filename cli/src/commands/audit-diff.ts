// ◇ How the projections found in PostgreSQL differ from what the log says they should hold, and how `broker audit`
// words each difference. Pure: the audit reads one shop's rows and its fold, and hands both here.
import type { ProjectionView } from '#persister';

export type Table = 'events' | 'devices' | 'connections' | 'messages';

export type Difference =
  | { table: Table; key: string; kind: 'missing' | 'unexpected' }
  | { table: Table; key: string; kind: 'field'; field: string; expected: unknown; found: unknown };

const TABLES: readonly Table[] = ['events', 'devices', 'connections', 'messages'];

/**
 * ◇ Every way `found` differs from `expected`: rows missing, rows the log does not explain, and fields that differ
 * (down to the key inside a JSON field). Only the fields the projection defines are compared; JSON values compare
 * by value, not key order (jsonb reorders keys).
 */
export function diffProjections(expected: ProjectionView, found: ProjectionView) {
  const differences: Difference[] = [];
  let compared = 0;
  for (const table of TABLES) {
    const want: Map<string, object> = expected[table];
    const have: Map<string, object> = found[table];
    for (const key of [...want.keys()].sort()) {
      compared++;
      const row = have.get(key);
      if (row === undefined) {
        differences.push({ table, key, kind: 'missing' });
        continue;
      }
      const wanted = want.get(key)! as Record<string, unknown>;
      const got = row as Record<string, unknown>;
      for (const field of Object.keys(wanted)) {
        for (const [path, expectedValue, foundValue] of fieldDifferences(field, wanted[field], got[field])) {
          differences.push({
            table,
            key,
            kind: 'field',
            field: path,
            expected: expectedValue,
            found: foundValue,
          });
        }
      }
    }
    for (const key of [...have.keys()].sort()) {
      if (want.has(key)) continue;
      compared++;
      differences.push({ table, key, kind: 'unexpected' });
    }
  }
  return { differences, compared };
}

/** Where two values differ: inside JSON objects, down to the keys that differ (`data.status`), not the whole object. */
function fieldDifferences(path: string, a: unknown, b: unknown): Array<[string, unknown, unknown]> {
  if (isSameValue(a, b)) return [];
  if (!isPlainObject(a) || !isPlainObject(b)) return [[path, a, b]];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((key) => fieldDifferences(`${path}.${key}`, a[key], b[key]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => isSameValue(item, b[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && isSameValue(left[key], right[key]));
}

const ROW_NAMES: Record<Table, string> = {
  events: 'event',
  devices: 'device',
  connections: 'connection',
  messages: 'message',
};

export function describeDifference(d: Difference): string {
  const where = `${d.table}: ${ROW_NAMES[d.table]} ${d.key}`;
  switch (d.kind) {
    case 'missing':
      return `${where}: missing (the log up to the checkpoint has it)`;
    case 'unexpected':
      return `${where}: unexpected (no event up to the checkpoint explains it)`;
    case 'field':
      return `${where}: ${d.field}: expected ${shown(d.expected)}, found ${shown(d.found)}`;
    default: {
      const never: never = d;
      return JSON.stringify(never);
    }
  }
}

function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
