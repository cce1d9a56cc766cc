// What the persister's integration tests share: appending logs, the fold they should project to, and the rows.
import { type BrokerEvent, encodeEvent, type Keys } from '#events';
import { emptyView, evolve, type ProjectionView, readProjection } from '#persister';
import type { Pool, RedisClient } from '#runtime';

export interface Appended {
  shard: number;
  streamId: string;
  event: BrokerEvent;
}

/** Appends events in order, in one pipeline, as the edge and the api would (XADD of t and e). */
export async function appendAll(redis: RedisClient, keys: Keys, events: BrokerEvent[]): Promise<Appended[]> {
  const pipeline = redis.pipeline();
  for (const event of events) pipeline.xadd(keys.streamOfShop(event.shop_id), '*', ...encodeEvent(event));
  const replies = (await pipeline.exec()) ?? [];
  return events.map((event, i) => {
    const [err, id] = replies[i]!;
    if (err) throw err;
    return { shard: keys.shardOf(event.shop_id), streamId: String(id), event };
  });
}

/** The rows the log should project to: the pure fold, in log order per shard. */
export function expectedRows(appended: Appended[]): ProjectionView {
  const view = emptyView();
  for (const { shard, streamId, event } of appended) evolve(view, event, { shard, streamId });
  return view;
}

/** The projected tables as sorted plain arrays, so two states compare with toEqual and diff readably. */
export function tablesOf(view: ProjectionView) {
  const sorted = <T>(rows: Map<string, T>) =>
    [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, row]) => row);
  return {
    events: sorted(view.events),
    devices: sorted(view.devices),
    connections: sorted(view.connections),
    messages: sorted(view.messages),
  };
}

export async function projectedTables(pool: Pool) {
  return tablesOf(await readProjection(pool));
}
