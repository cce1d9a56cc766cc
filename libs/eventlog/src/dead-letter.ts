// The dead-letter stream: entries that failed validation or projection, kept with the reason and their
// original fields so nothing is silently dropped and nothing blocks the events behind it.
import type { Keys } from '#events';
import type { RedisClient } from '#runtime';
import { counter } from '#runtime';

const deadLetters = counter('broker_dead_letters_total', 'Entries parked in a dead-letter stream', [
  'group',
  'kind',
]);
const DEAD_LETTER_MAXLEN = 100_000;

export interface DeadLetter {
  id: string;
  shard: number;
  group: string;
  stream_id: string;
  reason: string;
  at: string;
  fields: Record<string, string>;
}

export async function parkDeadLetter(
  redis: RedisClient,
  keys: Keys,
  entry: { shard: number; group: string; streamId: string; fields: string[]; reason: string; kind: string },
): Promise<void> {
  await redis.xadd(
    keys.deadLetter(entry.shard),
    'MAXLEN',
    '~',
    DEAD_LETTER_MAXLEN,
    '*',
    'group',
    entry.group,
    'stream_id',
    entry.streamId,
    'reason',
    entry.reason.slice(0, 2000),
    'at',
    new Date().toISOString(),
    'fields',
    JSON.stringify(entry.fields),
  );
  deadLetters.inc({ group: entry.group, kind: entry.kind });
}

/** The newest dead letters of every shard, newest first. */
export async function listDeadLetters(redis: RedisClient, keys: Keys, limit = 100): Promise<DeadLetter[]> {
  const perShard = await Promise.all(
    keys.allShards().map(async (shard) => {
      const entries = await redis.xrevrange(keys.deadLetter(shard), '+', '-', 'COUNT', limit);
      return entries.map(([id, flat]) => {
        const record: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
        return {
          id,
          shard,
          group: record.group ?? '',
          stream_id: record.stream_id ?? '',
          reason: record.reason ?? '',
          at: record.at ?? '',
          fields: fieldsOf(record.fields),
        };
      });
    }),
  );
  return perShard
    .flat()
    .sort((a, b) => b.at.localeCompare(a.at))
    .slice(0, limit);
}

/** The parked entry's original fields, stored as the flat [k, v, k, v] list Redis returned. */
function fieldsOf(stored: string | undefined): Record<string, string> {
  const flat = JSON.parse(stored ?? '[]') as string[]; // written by parkDeadLetter above
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}
