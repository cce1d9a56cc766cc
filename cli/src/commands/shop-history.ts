// One shard's history split by shop, for the audit: the live tail of the stream read once and sorted into shops,
// and each shop's older events read from the archive through its shop index. The same history as
// libs/eventlog/src/history.ts (where the archive and the stream both hold an event, the stream's copy is read),
// cut differently: per shop rather than in one log order. It belongs beside shardHistory; it lives here until
// libs/eventlog can take it (issue 22.7). Read-only.
import { type ArchivedEventRow, eventOfArchivedRow, type HistoryEntry, type HistorySource } from '#eventlog';
import { decodeEntry, parseStreamId } from '#events';

const DEFAULT_PAGE = 1000;

/** A shard's live tail, by shop; `start` is its oldest entry (null: the stream is empty). */
export interface ShardTail {
  shard: number;
  start: string | null;
  byShop: Map<string, HistoryEntry[]>;
}

/**
 * The stream of a shard read newest first, in pages. Retention trims only from the oldest end, so what is read
 * is one unbroken run of the stream, [start, newest], however much was trimmed meanwhile, and every event below
 * `start` is in the archive (retention trims only archived events). Only `shopId`'s entries are kept when given.
 * Memory: the tail, which STREAM_RETENTION_MS bounds (Redis holds it in memory too).
 */
export async function readShardTail(
  source: HistorySource,
  shard: number,
  shopId?: string,
): Promise<ShardTail> {
  const stream = source.keys.stream(shard);
  const pageSize = source.pageSize ?? DEFAULT_PAGE;
  const byShop = new Map<string, HistoryEntry[]>();
  let start: string | null = null;
  let before = '+';
  for (;;) {
    const page = await source.redis.xrevrange(stream, before, '-', 'COUNT', pageSize);
    for (const [streamId, fields] of page) {
      const decoded = decodeEntry(fields);
      if (!decoded.ok) {
        source.onInvalid?.({ shard, streamId, reason: decoded.reason });
        continue;
      }
      const { event } = decoded;
      if (shopId !== undefined && event.shop_id !== shopId) continue;
      const entry: HistoryEntry = { shard, streamId, event, from: 'stream' };
      const entries = byShop.get(event.shop_id);
      if (entries === undefined) byShop.set(event.shop_id, [entry]);
      else entries.push(entry);
    }
    if (page.length > 0) start = page[page.length - 1]![0];
    if (page.length < pageSize) break;
    before = `(${start}`;
  }
  for (const entries of byShop.values()) entries.reverse(); // read newest first; the log order is oldest first
  return { shard, start, byShop };
}

const ARCHIVE_PAGE = `SELECT id, stream_ms, stream_seq, shop_id, type, v, at, source, data FROM events
  WHERE (shop_id, stream_ms, stream_seq) > ($1::text, $3::bigint, $4::bigint)
    AND (shop_id, stream_ms, stream_seq) < ($1::text, $5::bigint, $6::bigint) AND shard = $2::int
  ORDER BY shop_id, stream_ms, stream_seq LIMIT $7`;
const MAX_BIGINT = '9223372036854775807';

/** A shop's history in log order: its archived events below the tail, then its entries in the tail. */
export async function* shopHistory(
  source: HistorySource,
  tail: ShardTail,
  shopId: string,
): AsyncGenerator<HistoryEntry> {
  const { shard } = tail;
  const pageSize = source.pageSize ?? DEFAULT_PAGE;
  const upper = tail.start === null ? { ms: MAX_BIGINT, seq: MAX_BIGINT } : parseStreamId(tail.start);
  let cursor = { ms: '0', seq: '0' };
  for (;;) {
    const { rows } = await source.db.query<ArchivedEventRow>({
      name: 'audit-shop-archive-page',
      text: ARCHIVE_PAGE,
      values: [shopId, shard, cursor.ms, cursor.seq, String(upper.ms), String(upper.seq), pageSize],
    });
    for (const row of rows) {
      const streamId = `${row.stream_ms}-${row.stream_seq}`;
      const decoded = eventOfArchivedRow(row);
      if (decoded.ok) yield { shard, streamId, event: decoded.event, from: 'archive' };
      else source.onInvalid?.({ shard, streamId, reason: `archived row: ${decoded.reason}` });
    }
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1]!;
    cursor = { ms: last.stream_ms, seq: last.stream_seq };
  }
  yield* tail.byShop.get(shopId) ?? [];
}
