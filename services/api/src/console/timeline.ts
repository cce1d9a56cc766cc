// A shop's recent events, newest first: the archive (the `events` table) joined to the tail of the shop's
// stream, which holds what the persister has not archived yet. libs/eventlog's history() reads forwards from the
// beginning, which is right for replay and audit but would read a shop's whole history every second here; this
// reads backwards and only as far as one page.
import { Type } from '@sinclair/typebox';
import { type ArchivedEventRow, eventOfArchivedRow } from '#eventlog';
import { type BrokerEvent, compareStreamIds, decodeEntry } from '#events';
import { type ApiContext, readRedis } from '../context';
import { selectCheckpoint } from '../queries';
import { defineRoute, type Route, ShopPath } from '../route';
import { selectRecentEvents } from './queries';

export const TIMELINE_DEFAULT = 50;
/**
 * Stream entries read back from the newest: the shard's stream mixes every shop of the shard, so this bounds the
 * work of one poll. Events of the shop that are neither archived nor among them are reported as a gap.
 */
const TAIL_WINDOW = 1000;

export interface TimelineEntry {
  stream_id: string;
  /** In the archive (the projections have committed it); otherwise only in the live stream so far. */
  is_archived: boolean;
  event: BrokerEvent;
}

export interface Timeline {
  items: TimelineEntry[];
  /** Unarchived events older than the tail window may be missing (the persister is far behind). */
  has_gap: boolean;
}

const TimelineQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })) });

export function timelineRoute(ctx: ApiContext): Route {
  return defineRoute({
    method: 'get',
    path: '/shops/:shopId/timeline',
    name: 'consoleTimeline',
    summary: "The shop's newest events, newest first, from the archive and the live stream.",
    params: ShopPath,
    query: TimelineQuery,
    success: { status: 200, description: 'the events' },
    errors: ['LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE'],
    example: { params: { shopId: 'shop-1' }, query: { limit: 50 } },
    async run({ params, query }) {
      return { status: 200, body: await timelineOf(ctx, params.shopId, query.limit ?? TIMELINE_DEFAULT) };
    },
  });
}

export async function timelineOf(ctx: ApiContext, shopId: string, limit: number): Promise<Timeline> {
  const shard = ctx.keys.shardOf(shopId);
  const [tail, archived, checkpoint] = await Promise.all([
    readRedis(ctx.redis.xrevrange(ctx.keys.stream(shard), '+', '-', 'COUNT', TAIL_WINDOW)),
    selectRecentEvents(ctx.pool, shopId, limit),
    selectCheckpoint(ctx.pool, shard),
  ]);
  const committed = checkpoint === null ? '0-0' : `${checkpoint.ms}-${checkpoint.seq}`;
  const byPosition = new Map<string, BrokerEvent>();
  for (const row of archived) {
    const event = eventOfRow(row);
    if (event !== null) byPosition.set(`${row.stream_ms}-${row.stream_seq}`, event);
  }
  for (const [streamId, fields] of tail) {
    const decoded = decodeEntry(fields);
    // An entry that does not decode is the dead-letter stream's business (the operations view shows it).
    if (decoded.ok && decoded.event.shop_id === shopId) byPosition.set(streamId, decoded.event);
  }
  const items = [...byPosition]
    .sort(([a], [b]) => compareStreamIds(b, a))
    .slice(0, limit)
    .map(([streamId, event]) => ({
      stream_id: streamId,
      is_archived: compareStreamIds(streamId, committed) <= 0,
      event,
    }));
  const oldestRead = tail.at(-1)?.[0];
  const hasGap =
    tail.length === TAIL_WINDOW && oldestRead !== undefined && compareStreamIds(oldestRead, committed) > 0;
  return { items, has_gap: hasGap };
}

function eventOfRow(row: ArchivedEventRow): BrokerEvent | null {
  const decoded = eventOfArchivedRow(row);
  return decoded.ok ? decoded.event : null;
}
