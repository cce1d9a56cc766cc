// `broker audit` one shop at a time, so that its memory is one shop's fold and rows however long the log: a shop's
// events all sit in one shard, in log order, so its fold needs no other shop's events. Shard by shard: read the
// live tail once (shop-history.ts), then for each shop fold its history (its archived events through its shop
// index, then its part of the tail), read its rows, compare, drop both, move on.
// Read-only. The checkpoints and every shop's rows are read in one snapshot of PostgreSQL.
import type { HistorySource } from '#eventlog';
import { compareStreamIds } from '#events';
import { emptyView, evolve, type ProjectionView, readCheckpoints, readProjection } from '#persister';
import { inTransaction, type PoolClient } from '#runtime';
import { type Difference, diffProjections } from './audit-diff';
import { readShardTail, type ShardTail, shopHistory } from './shop-history';

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

/** Audits the shops one after another, shard by shard, against one snapshot; answers the totals. */
export async function auditByShop(source: HistorySource, run: AuditRun): Promise<AuditTotals> {
  return inTransaction(source.db, async (snapshot) => {
    // The checkpoints and the rows in one snapshot, so rows committed meanwhile cannot pass for extra rows.
    await snapshot.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const checkpoints = await readCheckpoints(snapshot);
    const totals: AuditTotals = {
      shops: 0,
      folded: 0,
      compared: 0,
      notYetProjected: 0,
      differences: 0,
      invalid: 0,
    };
    const counted: HistorySource = {
      ...source,
      onInvalid: () => {
        totals.invalid++;
      },
    };
    const { keys } = source;
    const shopsWithRows = run.shopId === undefined ? await shopsOfTables(snapshot) : [run.shopId];
    run.onShops?.(shopsWithRows.length);
    const shards = run.shopId === undefined ? keys.allShards() : [keys.shardOf(run.shopId)];
    for (const shard of shards) {
      const tail = await readShardTail(counted, shard, run.shopId);
      // The shard's shops: those with rows, and those whose events are only in the tail so far.
      const shops = new Set(shopsWithRows.filter((shopId) => keys.shardOf(shopId) === shard));
      for (const shopId of tail.byShop.keys()) shops.add(shopId);
      for (const shopId of [...shops].sort()) {
        const audit = await auditShop(snapshot, counted, tail, checkpoints, shopId);
        tail.byShop.delete(shopId);
        totals.shops++;
        totals.folded += audit.folded;
        totals.compared += audit.compared;
        totals.notYetProjected += audit.notYetProjected;
        totals.differences += audit.differences.length;
        run.onShop(audit);
      }
    }
    return totals;
  });
}

/** One shop: its history folded up to its shard's checkpoint, compared with its rows in the snapshot. */
export async function auditShop(
  snapshot: PoolClient,
  source: HistorySource,
  tail: ShardTail,
  checkpoints: Map<number, string>,
  shopId: string,
): Promise<ShopAudit> {
  const { shard } = tail;
  const checkpoint = checkpoints.get(shard) ?? '0-0';
  const expected = emptyView();
  let folded = 0;
  let notYetProjected = 0;
  for await (const { streamId, event } of shopHistory(source, tail, shopId)) {
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

/** Every shop with a row in the snapshot (an archived event is a row), sorted. */
async function shopsOfTables(snapshot: PoolClient): Promise<string[]> {
  const shops = new Set<string>();
  for (const text of SHOPS_OF_TABLE) {
    const { rows } = await snapshot.query<{ shop_id: string }>(text);
    for (const row of rows) shops.add(row.shop_id);
  }
  return [...shops].sort();
}
