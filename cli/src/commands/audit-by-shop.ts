// `broker audit` one shop at a time, so that its memory is one shop's rows however long the log: a shop's events
// all sit in one shard, in log order, so its fold needs no other shop's events. For each shop: fold its history
// (the archive through its shop index, then the live tail), read its rows, compare, drop both, move on.
// Read-only. Everything is read against one snapshot of PostgreSQL: the checkpoints and every shop's rows.
import { type HistorySource, shardHistory } from '#eventlog';
import { compareStreamIds, decodeEntry } from '#events';
import { emptyView, evolve, type ProjectionView, readCheckpoints, readProjection } from '#persister';
import { inTransaction, type PoolClient } from '#runtime';
import { type Difference, diffProjections } from './audit-diff';

/** One shop audited: its fold, its rows, and how they differ. Both views are dropped once `onShop` returns. */
export interface ShopAudit {
  shopId: string;
  expected: ProjectionView;
  found: ProjectionView;
  differences: Difference[];
  /** Rows compared (the expected ones, and the found ones no event explains). */
  compared: number;
  /** Events up to the shard's checkpoint, folded. */
  folded: number;
  /** Events after the shard's checkpoint: counted, not compared. */
  notYetProjected: number;
}

export interface AuditTotals {
  shops: number;
  folded: number;
  compared: number;
  notYetProjected: number;
  differences: number;
  /** Entries that fail validation (skipped, as the consumers skip them), each counted once. */
  invalid: number;
}

export interface AuditRun {
  /** Only this shop; otherwise every shop that has an event or a row. */
  shopId?: string;
  /** Told how many shops will be audited, once that is known. */
  onShops?(count: number): void;
  /** Told about each shop once it is audited. */
  onShop(audit: ShopAudit): void;
}

/** Audits the shops one after another against one snapshot; answers the totals. */
export async function auditByShop(source: HistorySource, run: AuditRun): Promise<AuditTotals> {
  return inTransaction(source.db, async (snapshot) => {
    // The checkpoints and the rows in one snapshot, so rows committed meanwhile cannot pass for extra rows.
    await snapshot.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const checkpoints = await readCheckpoints(snapshot);
    // An invalid stream entry is seen once per shop of its shard; a set of positions counts it once.
    const invalid = new Set<string>();
    const counted: HistorySource = {
      ...source,
      onInvalid: ({ shard, streamId }) => {
        invalid.add(`${shard}:${streamId}`);
      },
    };
    const shops = run.shopId === undefined ? await shopsOfLog(snapshot, counted) : [run.shopId];
    run.onShops?.(shops.length);
    const totals: AuditTotals = {
      shops: 0,
      folded: 0,
      compared: 0,
      notYetProjected: 0,
      differences: 0,
      invalid: 0,
    };
    for (const shopId of shops) {
      const audit = await auditShop(snapshot, counted, checkpoints, shopId);
      totals.shops++;
      totals.folded += audit.folded;
      totals.compared += audit.compared;
      totals.notYetProjected += audit.notYetProjected;
      totals.differences += audit.differences.length;
      run.onShop(audit);
    }
    totals.invalid = invalid.size;
    return totals;
  });
}

/** One shop: its history folded up to its shard's checkpoint, compared with its rows in the snapshot. */
export async function auditShop(
  snapshot: PoolClient,
  source: HistorySource,
  checkpoints: Map<number, string>,
  shopId: string,
): Promise<ShopAudit> {
  const shard = source.keys.shardOf(shopId);
  const checkpoint = checkpoints.get(shard) ?? '0-0';
  const expected = emptyView();
  let folded = 0;
  let notYetProjected = 0;
  for await (const { streamId, event } of shardHistory(source, shard, { shopId })) {
    if (compareStreamIds(streamId, checkpoint) > 0) {
      notYetProjected++;
      continue;
    }
    evolve(expected, event, { shard, streamId });
    folded++;
  }
  const found = await readProjection(shopRowsOf(snapshot, shopId));
  const { differences, compared } = diffProjections(expected, found);
  return { shopId, expected, found, differences, compared, folded, notYetProjected };
}

/**
 * readProjection reads whole tables; this narrows each of its reads to one shop's rows (every projected table has
 * shop_id, and PostgreSQL pulls the subquery up, so each read walks that table's shop index). The text wrapped is
 * readProjection's own fixed SQL, never input. It also runs the reads one after another: readProjection sends its
 * four at once, and pg warns that queueing on a busy client is deprecated (refused from pg 9).
 */
function shopRowsOf(snapshot: PoolClient, shopId: string): PoolClient {
  let previous: Promise<unknown> = Promise.resolve();
  const query = (text: string, values?: unknown[]) => {
    if (values !== undefined) throw new Error('audit: readProjection is expected to read whole tables');
    const next = previous.then(() =>
      snapshot.query(`SELECT * FROM (${text}) AS whole_table WHERE shop_id = $1`, [shopId]),
    );
    previous = next.catch(() => undefined); // the caller gets the failure; the chain only orders the calls
    return next;
  };
  // readProjection only calls query(text); the rest of the client is not needed for it.
  return { query } as unknown as PoolClient;
}

/**
 * The distinct shop ids of a table, by skipping through its index that begins with shop_id (a loose index scan:
 * one probe per shop, not a read of every row). Table names are fixed here, never input.
 */
const SHOPS_OF_TABLE = ['events', 'devices', 'connections', 'messages'].map(
  (table) => `WITH RECURSIVE shops(shop_id) AS (
      (SELECT shop_id FROM ${table} ORDER BY shop_id LIMIT 1)
      UNION ALL
      SELECT (SELECT t.shop_id FROM ${table} t WHERE t.shop_id > shops.shop_id ORDER BY t.shop_id LIMIT 1)
      FROM shops WHERE shops.shop_id IS NOT NULL)
    SELECT shop_id FROM shops WHERE shop_id IS NOT NULL`,
);

const STREAM_PAGE = 1000;

/**
 * Every shop with a row in the snapshot or an event in a live stream, sorted. A shop whose events are all in the
 * archive has an `events` row; the streams add the shops whose events are not archived yet (or not at all).
 */
async function shopsOfLog(snapshot: PoolClient, source: HistorySource): Promise<string[]> {
  const shops = new Set<string>();
  for (const text of SHOPS_OF_TABLE) {
    const { rows } = await snapshot.query<{ shop_id: string }>(text);
    for (const row of rows) shops.add(row.shop_id);
  }
  for (const shard of source.keys.allShards()) {
    const stream = source.keys.stream(shard);
    let start = '-';
    for (;;) {
      const page = await source.redis.xrange(stream, start, '+', 'COUNT', STREAM_PAGE);
      for (const [streamId, fields] of page) {
        const decoded = decodeEntry(fields);
        if (decoded.ok) shops.add(decoded.event.shop_id);
        else source.onInvalid?.({ shard, streamId, reason: decoded.reason });
      }
      if (page.length < STREAM_PAGE) break;
      start = `(${page[page.length - 1]![0]}`;
    }
  }
  return [...shops].sort();
}
