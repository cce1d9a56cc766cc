// How far the projections are behind the log: per shard, the age of the oldest event the persister group has not
// finished. Feeds the broker_projection_lag_seconds gauge and the /readyz detail; decides nothing.

import { groupLag } from '#eventlog';
import { type Keys, parseStreamId } from '#events';
import { gauge, type RedisClient } from '#runtime';

export const PERSISTER_GROUP = 'persister';

const lagSeconds = gauge(
  'broker_projection_lag_seconds',
  'Age of the oldest event not yet projected, per shard (0 when caught up)',
  ['shard'],
);

export interface ShardLag {
  shard: number;
  /** Entries read but not yet committed and acknowledged. */
  pending: number;
  /** Entries not yet read by the group. */
  unread: number;
  /** Age of the oldest unprojected event, seconds; 0 when caught up. */
  oldest_unprojected_age_s: number;
}

/** Measures every shard and updates the gauge. */
export async function measureLag(redis: RedisClient, keys: Keys, nowMs: number): Promise<ShardLag[]> {
  return Promise.all(
    keys.allShards().map(async (shard) => {
      const lag = await groupLag(redis, keys.stream(shard), PERSISTER_GROUP);
      const oldestMs = lag.oldestUnfinished === null ? nowMs : parseStreamId(lag.oldestUnfinished).ms;
      const age = Math.max(0, nowMs - oldestMs) / 1000;
      lagSeconds.set({ shard: String(shard) }, age);
      return { shard, pending: lag.pending, unread: lag.unread, oldest_unprojected_age_s: age };
    }),
  );
}

/** The /readyz detail: the worst shard first, and only shards that are behind. */
export function lagDetail(lags: ShardLag[]): Record<string, unknown> {
  const behind = lags.filter((l) => l.pending > 0 || l.unread > 0);
  behind.sort((a, b) => b.oldest_unprojected_age_s - a.oldest_unprojected_age_s);
  return {
    projection_lag_s: behind[0]?.oldest_unprojected_age_s ?? 0,
    shards_behind: behind,
  };
}
