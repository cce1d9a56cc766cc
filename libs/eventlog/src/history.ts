// The whole history of the log as one sequence: the PostgreSQL archive (the `events` table, which keeps what
// retention trimmed from the streams) joined to the live shard streams. Reads both in pages, so a year of events
// never sits in memory. Read-only: it writes neither Redis nor PostgreSQL. Used by replay, audit and rebuild.
//
// Per shard the order is log order (stream position). Across shards there is no log order, so `history` merges
// the shards by `at`, then event id: each shard's own order is kept, and the interleaving is by time.
import {
  type BrokerEvent,
  compareStreamIds,
  type DecodeResult,
  decodeEntry,
  type EventType,
  explainInvalidEvent,
  type Keys,
  parseStreamId,
} from '#events';
import type { Pool, RedisClient } from '#runtime';
import type { ConsumedEntry } from './consume';

/** Which events to read. Every bound is optional; all given bounds apply together. */
export interface HistoryFilter {
  /** Only this shop's events; only its shard is read. */
  shopId?: string;
  types?: readonly EventType[];
  /** `at` at or after this ISO time. */
  since?: string;
  /** `at` strictly before this ISO time. */
  until?: string;
  /** Event id at or after this one (ids are time-ordered ULIDs). */
  fromId?: string;
  /** Event id at or before this one. */
  toId?: string;
}

/** One event with its place in the log, and where it was read from. */
export interface HistoryEntry extends ConsumedEntry {
  shard: number;
  from: 'archive' | 'stream';
}

export interface HistorySource {
  redis: RedisClient;
  db: Pool;
  keys: Keys;
  /** Rows or entries fetched per round trip (default 1000). */
  pageSize?: number;
  /** Told about each entry that fails validation; such entries are skipped, as the consumers skip them. */
  onInvalid?(problem: { shard: number; streamId: string; reason: string }): void;
}

const DEFAULT_PAGE = 1000;
const MAX_BIGINT = '9223372036854775807';

/** The shards a filter needs: the shop's own, or all of them. */
export function historyShards(keys: Keys, filter: HistoryFilter = {}): number[] {
  return filter.shopId === undefined ? keys.allShards() : [keys.shardOf(filter.shopId)];
}

/** The filtered history of the shards the filter needs; several shards are merged by (`at`, id). */
export function history(source: HistorySource, filter: HistoryFilter = {}): AsyncGenerator<HistoryEntry> {
  const shards = historyShards(source.keys, filter);
  if (shards.length === 1) return shardHistory(source, shards[0]!, filter);
  return mergeByTime(shards.map((shard) => shardHistory(source, shard, filter)));
}

/**
 * One shard's filtered history in log order, up to the stream's newest entry when reading starts.
 *
 * The stream is read in pages; before each page, the archive is read for the positions between the previous
 * page and this one. Those are the entries no longer in the stream: trimmed before reading began (the gap before
 * the first page) or trimmed by retention while we read (a gap between pages). Where the archive and the stream
 * both hold an event, the stream's copy is the one read, so the archive is checked against the live log rather
 * than trusted over it. Retention trims only below archived positions, so nothing falls between the two.
 */
export async function* shardHistory(
  source: HistorySource,
  shard: number,
  filter: HistoryFilter = {},
): AsyncGenerator<HistoryEntry> {
  const { redis, keys } = source;
  const pageSize = source.pageSize ?? DEFAULT_PAGE;
  const match = matcherOf(filter);
  const stream = keys.stream(shard);
  const newest = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
  const end = newest[0]?.[0];
  if (end === undefined) {
    yield* archived(source, shard, filter, '0-0', null);
    return;
  }
  let after = '0-0';
  while (compareStreamIds(after, end) < 0) {
    const page = await redis.xrange(stream, after === '0-0' ? '-' : `(${after}`, end, 'COUNT', pageSize);
    const first = page[0]?.[0];
    yield* archived(source, shard, filter, after, first ?? nextPosition(end));
    if (first === undefined) return;
    for (const [streamId, fields] of page) {
      const entry = entryOfStream(source, shard, streamId, fields, filter, match);
      if (entry) yield entry;
    }
    after = page[page.length - 1]![0];
  }
}

/** How many events a shard's history holds (unfiltered): archived below the stream, plus the stream. */
export async function historySize(source: HistorySource, shard: number): Promise<number> {
  const stream = source.keys.stream(shard);
  const [oldest, length] = await Promise.all([
    source.redis.xrange(stream, '-', '+', 'COUNT', 1),
    source.redis.xlen(stream),
  ]);
  const first = oldest[0]?.[0];
  const below = first === undefined ? { ms: MAX_BIGINT, seq: MAX_BIGINT } : parseStreamId(first);
  const result = await source.db.query<{ n: string }>({
    name: 'history-size',
    text: `SELECT count(*) AS n FROM events
           WHERE (shard, stream_ms, stream_seq) >= ($1::int, 0, 0)
             AND (shard, stream_ms, stream_seq) < ($1::int, $2::bigint, $3::bigint)`,
    values: [shard, String(below.ms), String(below.seq)],
  });
  return Number(result.rows[0]!.n) + length;
}

function nextPosition(streamId: string): string {
  const { ms, seq } = parseStreamId(streamId);
  return `${ms}-${seq + 1}`;
}

// Keyset pages over the archive, (shard, stream_ms, stream_seq) > cursor. With a shop the shop's index is the one
// to walk: a shop sits in one shard, so its positions are unique too. The filters are fixed SQL with parameters.
const COLUMNS = 'id, stream_ms, stream_seq, shop_id, type, v, at, source, data';
const FILTERS = `
  AND ($6::text[] IS NULL OR type = ANY($6::text[]))
  AND ($7::timestamptz IS NULL OR at >= $7::timestamptz) AND ($8::timestamptz IS NULL OR at < $8::timestamptz)
  AND ($9::text IS NULL OR id COLLATE "C" >= $9::text) AND ($10::text IS NULL OR id COLLATE "C" <= $10::text)`;
const SHARD_PAGE = `SELECT ${COLUMNS} FROM events
  WHERE (shard, stream_ms, stream_seq) > ($1::int, $2::bigint, $3::bigint)
    AND (shard, stream_ms, stream_seq) < ($1::int, $4::bigint, $5::bigint) ${FILTERS}
  ORDER BY shard, stream_ms, stream_seq LIMIT $11`;
const SHOP_PAGE = `SELECT ${COLUMNS} FROM events
  WHERE (shop_id, stream_ms, stream_seq) > ($12::text, $2::bigint, $3::bigint)
    AND (shop_id, stream_ms, stream_seq) < ($12::text, $4::bigint, $5::bigint) AND shard = $1::int ${FILTERS}
  ORDER BY shop_id, stream_ms, stream_seq LIMIT $11`;

/** A row of the `events` archive as pg returns it: bigints as strings, timestamptz as Date. */
export interface ArchivedEventRow {
  id: string;
  stream_ms: string;
  stream_seq: string;
  shop_id: string;
  type: string;
  v: number;
  at: Date;
  source: string;
  data: unknown;
}

/** The event an archived row holds, checked against the catalogue (an invalid row is never archived: a guard). */
export function eventOfArchivedRow(row: ArchivedEventRow): DecodeResult {
  const event = {
    id: row.id,
    type: row.type,
    v: row.v,
    at: row.at.toISOString(),
    shop_id: row.shop_id,
    source: row.source,
    data: row.data,
  };
  const problem = explainInvalidEvent(event);
  // Validated just above: the row is an event of the catalogue.
  return problem === null ? { ok: true, event: event as BrokerEvent } : { ok: false, reason: problem };
}

/** Archived events of a shard strictly between two positions (`before` null: to the end), in pages. */
async function* archived(
  source: HistorySource,
  shard: number,
  filter: HistoryFilter,
  after: string,
  before: string | null,
): AsyncGenerator<HistoryEntry> {
  const pageSize = source.pageSize ?? DEFAULT_PAGE;
  const upper = before === null ? { ms: MAX_BIGINT, seq: MAX_BIGINT } : parseStreamId(before);
  let cursor = parseStreamId(after);
  for (;;) {
    const values: unknown[] = [
      shard,
      String(cursor.ms),
      String(cursor.seq),
      String(upper.ms),
      String(upper.seq),
      filter.types ?? null,
      filter.since ?? null,
      filter.until ?? null,
      filter.fromId ?? null,
      filter.toId ?? null,
      pageSize,
    ];
    const query =
      filter.shopId === undefined
        ? { name: 'history-shard-page', text: SHARD_PAGE, values }
        : { name: 'history-shop-page', text: SHOP_PAGE, values: [...values, filter.shopId] };
    const { rows } = await source.db.query<ArchivedEventRow>(query);
    for (const row of rows) {
      const streamId = `${row.stream_ms}-${row.stream_seq}`;
      const decoded = eventOfArchivedRow(row);
      if (decoded.ok) yield { shard, streamId, event: decoded.event, from: 'archive' };
      else source.onInvalid?.({ shard, streamId, reason: `archived row: ${decoded.reason}` });
    }
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1]!;
    cursor = { ms: Number(last.stream_ms), seq: Number(last.stream_seq) };
  }
}

type Matcher = (event: BrokerEvent) => boolean;

function matcherOf(filter: HistoryFilter): Matcher {
  const sinceMs = filter.since === undefined ? null : Date.parse(filter.since);
  const untilMs = filter.until === undefined ? null : Date.parse(filter.until);
  const { shopId, fromId, toId } = filter;
  return (event) => {
    if (shopId !== undefined && event.shop_id !== shopId) return false;
    if (fromId !== undefined && event.id < fromId) return false;
    if (toId !== undefined && event.id > toId) return false;
    if (sinceMs === null && untilMs === null) return true;
    const atMs = Date.parse(event.at);
    return (sinceMs === null || atMs >= sinceMs) && (untilMs === null || atMs < untilMs);
  };
}

function entryOfStream(
  source: HistorySource,
  shard: number,
  streamId: string,
  fields: string[],
  filter: HistoryFilter,
  match: Matcher,
): HistoryEntry | null {
  // The `t` field names the type, so a type filter skips entries without parsing them.
  if (filter.types && fields[0] === 't' && !filter.types.includes(fields[1] as EventType)) return null;
  const decoded = decodeEntry(fields);
  if (!decoded.ok) {
    source.onInvalid?.({ shard, streamId, reason: decoded.reason });
    return null;
  }
  if (filter.types && !filter.types.includes(decoded.event.type)) return null;
  return match(decoded.event) ? { shard, streamId, event: decoded.event, from: 'stream' } : null;
}

interface Head {
  entry: HistoryEntry;
  atMs: number;
  source: AsyncGenerator<HistoryEntry>;
}

function isBefore(a: Head, b: Head): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.entry.event.id !== b.entry.event.id) return a.entry.event.id < b.entry.event.id;
  return a.entry.shard < b.entry.shard;
}

/** A k-way merge on a binary heap of each shard's next entry; each shard's own order is kept. */
async function* mergeByTime(sources: AsyncGenerator<HistoryEntry>[]): AsyncGenerator<HistoryEntry> {
  const heap: Head[] = [];
  try {
    for (const source of sources) {
      const next = await source.next();
      if (!next.done) push({ entry: next.value, atMs: Date.parse(next.value.event.at), source });
    }
    while (heap.length > 0) {
      const top = heap[0]!;
      yield top.entry;
      const next = await top.source.next();
      if (next.done) {
        const last = heap.pop()!;
        if (heap.length > 0) {
          heap[0] = last;
          siftDown(0);
        }
      } else {
        top.entry = next.value;
        top.atMs = Date.parse(next.value.event.at);
        siftDown(0);
      }
    }
  } finally {
    await Promise.all(sources.map((source) => source.return(undefined)));
  }

  function push(head: Head): void {
    heap.push(head);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!isBefore(heap[i]!, heap[parent]!)) return;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  function siftDown(start: number): void {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < heap.length && isBefore(heap[left]!, heap[first]!)) first = left;
      if (right < heap.length && isBefore(heap[right]!, heap[first]!)) first = right;
      if (first === i) return;
      [heap[i], heap[first]] = [heap[first]!, heap[i]!];
      i = first;
    }
  }
}
