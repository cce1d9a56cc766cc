// Stream retention (SPEC §4): a shard's stream is trimmed only below an event that is archived in PostgreSQL,
// older than STREAM_RETENTION_MS, and that both the dispatcher and the persister groups have finished with.
// It never trims more than all of those allow; it may trim less. Each round also tells the notify script how far
// the shard is archived, so that req_id records of archived notifies can go once their window is over. What a
// stream still holds is in /metrics, so a stream that cannot be trimmed (PostgreSQL down, a group stuck) shows as
// a growing length and an old head.

import { groupLag } from '#eventlog';
import { compareStreamIds, type Keys, parseStreamId } from '#events';
import { counter, gauge, type Pool, type RedisClient } from '#runtime';
import { PERSISTER_GROUP } from './lag';
import { newestArchived } from './store';

/** The groups whose unfinished events must stay in the stream. */
export const GROUPS_TO_WAIT_FOR = ['dispatcher', PERSISTER_GROUP] as const;

const trimmedEntries = counter('broker_stream_trimmed_total', 'Stream entries trimmed by retention', [
  'shard',
]);

const streamEntries = gauge(
  'broker_stream_entries',
  'Entries a shard stream holds after the last retention round (grows while trimming is held back)',
  ['shard'],
);
const streamHeadAge = gauge(
  'broker_stream_oldest_entry_age_seconds',
  'Age of the oldest entry a shard stream holds after the last retention round; far above STREAM_RETENTION_MS ' +
    'means trimming is held back (an unarchived or unfinished event)',
  ['shard'],
);

export interface TrimBounds {
  /** Stream id of the newest event archived in PostgreSQL, or null when none is. */
  newestArchived: string | null;
  /** Entries at or after this time stay: now - STREAM_RETENTION_MS. */
  cutoffMs: number;
  /** Per group, the oldest entry it has not finished, or null when it has finished them all. */
  oldestUnfinished: Array<string | null>;
}

/** ◇ The lowest stream id that must stay (XTRIM MINID), or null when nothing may be trimmed. */
export function keepFrom(bounds: TrimBounds): string | null {
  if (bounds.newestArchived === null) return null;
  let minId = bounds.newestArchived; // the newest archived event itself stays: every event below it is archived
  const candidates = [`${Math.max(0, bounds.cutoffMs)}-0`, ...bounds.oldestUnfinished];
  for (const candidate of candidates) {
    if (candidate !== null && compareStreamIds(candidate, minId) < 0) minId = candidate;
  }
  return minId === '0-0' ? null : minId;
}

export interface RetentionDeps {
  redis: RedisClient;
  pool: Pool;
  keys: Keys;
}

/**
 * Trims one shard's stream as far as keepFrom allows; answers how many entries went. Whether or not it could trim
 * (PostgreSQL unreachable throws), it then reports what the stream holds.
 */
export async function trimShard(deps: RetentionDeps, shard: number, nowMs: number, retentionMs: number) {
  try {
    return await trimAsAllowed(deps, shard, nowMs, retentionMs);
  } finally {
    await reportHeld(deps, shard, nowMs);
  }
}

async function reportHeld(deps: RetentionDeps, shard: number, nowMs: number): Promise<void> {
  const stream = deps.keys.stream(shard);
  const [length, head] = await Promise.all([
    deps.redis.xlen(stream),
    deps.redis.xrange(stream, '-', '+', 'COUNT', 1),
  ]);
  const labels = { shard: String(shard) };
  streamEntries.set(labels, length);
  const oldest = head[0]?.[0];
  streamHeadAge.set(labels, oldest ? Math.max(0, nowMs - parseStreamId(oldest).ms) / 1000 : 0);
}

async function trimAsAllowed(deps: RetentionDeps, shard: number, nowMs: number, retentionMs: number) {
  const stream = deps.keys.stream(shard);
  // The archive first, the groups after: a group that has "finished everything" has finished every entry that
  // existed when it was asked, so also the newest archived one read before it. The other way round, an entry
  // appended and archived in between could be trimmed before the dispatcher has read it.
  const archived = await newestArchived(deps.pool, shard);
  if (archived === null) return 0;
  // The req_id records of notifies archived by now may leave Redis after their window (notify-12.lua).
  await deps.redis.set(deps.keys.archivedThrough(shard), parseStreamId(archived).ms);
  const oldestUnfinished = await Promise.all(
    GROUPS_TO_WAIT_FOR.map(async (group) => (await groupLag(deps.redis, stream, group)).oldestUnfinished),
  );
  const minId = keepFrom({ newestArchived: archived, cutoffMs: nowMs - retentionMs, oldestUnfinished });
  if (minId === null) return 0;
  const trimmed = await deps.redis.xtrim(stream, 'MINID', minId);
  if (trimmed > 0) trimmedEntries.inc({ shard: String(shard) }, trimmed);
  return trimmed;
}

/** How often retention runs: a tenth of the retention time, between 1 s and 1 min. */
export function retentionIntervalMs(retentionMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(retentionMs / 10)));
}
