// Building blocks shared by events, frames and REST bodies, and the one way a schema is compiled and checked.
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

/** SPEC §3: shop and client ids are 1–64 of `A–Z a–z 0–9 _ . : -`. */
export const Identifier = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', minLength: 1, maxLength: 64 });
export const ShopId = Identifier;
export const ClientId = Identifier;

export const DeviceType = Type.Union([Type.Literal('main'), Type.Literal('sub')]);
export type DeviceType = Static<typeof DeviceType>;

/** The legacy spellings 主/副 are accepted wherever a type is given, and stored as main/sub. */
export const DeviceTypeInput = Type.Union([
  Type.Literal('main'),
  Type.Literal('sub'),
  Type.Literal('主'),
  Type.Literal('副'),
]);

export function normaliseDeviceType(type: Static<typeof DeviceTypeInput>): DeviceType {
  if (type === '主') return 'main';
  if (type === '副') return 'sub';
  return type;
}

/** A table id comes back exactly as sent: a string or an integer. */
export const TableId = Type.Union([Type.String({ maxLength: 128 }), Type.Integer()]);
export const ReqId = Type.String({ minLength: 1, maxLength: 128 });
export const JsonObject = Type.Record(Type.String(), Type.Unknown());

/**
 * Deepest nesting a free-form JSON field (`data`, `user_info`) may have. JSON.parse takes any depth, but
 * JSON.stringify and PostgreSQL's jsonb recurse and fail on a few thousand levels; no device needs more.
 */
export const MAX_JSON_DEPTH = 32;

/** True when objects and arrays in a parsed JSON value nest deeper than `maxDepth`. Iterative: any depth is safe. */
export function isNestedDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= maxDepth) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * True when a string (or an object key) in a parsed JSON value holds U+0000. JSON allows it, PostgreSQL's jsonb
 * and text refuse it: accepted, such a notify would be delivered but never projected. Iterative.
 */
export function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return true;
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        if (key.includes('\u0000')) return true;
        stack.push(child);
      }
    }
  }
  return false;
}

/** Why a notify's fields could not be recorded and projected as sent, or null: one rule for the edge and the api. */
export function unstorableReason(fields: { data?: unknown; user_info?: unknown }): string | null {
  if (
    isNestedDeeperThan(fields.data, MAX_JSON_DEPTH) ||
    isNestedDeeperThan(fields.user_info, MAX_JSON_DEPTH)
  ) {
    return `data and user_info may be nested at most ${MAX_JSON_DEPTH} levels deep`;
  }
  if (containsNul(fields)) return 'strings may not contain U+0000';
  return null;
}

export const NotifyType = Type.String({ minLength: 1, maxLength: 64 });
export const BusinessStatus = Type.Integer({ minimum: -2147483648, maximum: 2147483647 });
export const IsoTime = Type.String({ format: 'date-time', maxLength: 40 });
export const MessageId = Type.String({
  minLength: 28,
  maxLength: 91,
  pattern: '^[0-9A-HJKMNP-TV-Z]{26}\\.[A-Za-z0-9_.:-]{1,64}$',
});

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// TypeBox checks formats only when told how; we know one.
import { FormatRegistry } from '@sinclair/typebox';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (value) => DATE_TIME.test(value));

export interface Checker<T> {
  readonly schema: TSchema;
  /** True when the value has the schema's shape. */
  is(value: unknown): value is T;
  /** The first few problems as one readable line, e.g. `/data/table_id: Expected union value`. */
  explain(value: unknown): string;
}

/** Compiles a schema once, at module load; the hot path calls `is`, error paths call `explain`. */
export function compile<S extends TSchema>(schema: S): Checker<Static<S>> {
  const check = TypeCompiler.Compile(schema);
  return {
    schema,
    is: (value: unknown): value is Static<S> => check.Check(value),
    explain(value: unknown): string {
      const problems: string[] = [];
      for (const error of check.Errors(value)) {
        problems.push(`${error.path || '/'}: ${error.message}`);
        if (problems.length === 3) break;
      }
      return problems.join('; ') || 'invalid';
    },
  };
}

export { Value };
