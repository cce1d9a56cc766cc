import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEntry } from '#eventlog';
import { batchProjector, type PersisterHandle, projectBatches, start } from '#persister';
import { connectPostgres, type Pool, registry } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { busyShopOps, type ShopOp, shopLog } from '../../support/shop-log';
import { type Appended, appendAll, expectedRows, projectedTables, tablesOf } from './harness';

let ctx: TestContext;
let pool: Pool;
let persister: PersisterHandle;
let appended: Appended[];

const churn: ShopOp[] = [
  { op: 'fail', pick: 0, attempts: 8 },
  { op: 'handle', pick: 1, status: 2 },
  { op: 'revoke', client: 1 },
  { op: 'register', client: 1, type: 'main' },
  { op: 'notify', client: 3 },
];

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '16' });
  persister = await start(ctx.config, { log: ctx.log, healthServer: false });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
  const events = ['shop-x', 'shop-y', 'shop-z', 'shop-w', 'shop-v', 'shop-u'].flatMap((shopId) =>
    shopLog([...busyShopOps(12), ...churn], { shopId }),
  );
  appended = await appendAll(ctx.redis, ctx.keys, events);
  await persister.whenCaughtUp();
});
afterAll(async () => {
  await persister.stop();
  await pool.end();
  await ctx.cleanup();
});

async function rewindGroup(): Promise<void> {
  for (const shard of ctx.keys.allShards()) {
    await ctx.redis.xgroup('SETID', ctx.keys.stream(shard), 'persister', '0');
  }
}

async function redeliveredTotal(): Promise<number> {
  const metric = await registry.getSingleMetric('broker_projection_redelivered_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

describe('when the whole log is delivered to the persister again', () => {
  it('skips what the checkpoints cover and leaves every row as it was', async () => {
    const before = await projectedTables(pool);
    expect(before).toEqual(tablesOf(expectedRows(appended)));
    const skippedBefore = await redeliveredTotal();

    await rewindGroup();
    await persister.whenCaughtUp();

    expect(await projectedTables(pool)).toEqual(before);
    expect((await redeliveredTotal()) - skippedBefore).toBe(appended.length);
  });

  it('leaves every row as it was even without checkpoints, by the guards of the SQL alone', async () => {
    const before = await projectedTables(pool);
    await pool.query('DELETE FROM projection_checkpoints');

    await rewindGroup();
    await persister.whenCaughtUp();

    expect(await projectedTables(pool)).toEqual(before);
  });
});

describe('when two persisters commit the same batch at once (a lease takeover)', () => {
  it('lets the checkpoint lock apply it once', async () => {
    const before = await projectedTables(pool);
    const shard = appended[0]!.shard;
    const entries: ConsumedEntry[] = appended
      .filter((a) => a.shard === shard)
      .map(({ streamId, event }) => ({ streamId, event }));
    await pool.query('UPDATE projection_checkpoints SET stream_ms = 0, stream_seq = 0 WHERE shard = $1', [
      shard,
    ]);
    const skippedBefore = await redeliveredTotal();

    const project = batchProjector(pool, ctx.log);
    await Promise.all([project(shard, entries), project(shard, entries)]);

    expect(await projectedTables(pool)).toEqual(before);
    expect((await redeliveredTotal()) - skippedBefore).toBe(entries.length);
  });

  it('lets the lock apply it once when the shard has no checkpoint yet, though both try to create it', async () => {
    const before = await projectedTables(pool);
    const shard = appended[0]!.shard;
    const entries: ConsumedEntry[] = appended
      .filter((a) => a.shard === shard)
      .map(({ streamId, event }) => ({ streamId, event }));
    await pool.query('DELETE FROM projection_checkpoints WHERE shard = $1', [shard]);
    const skippedBefore = await redeliveredTotal();

    const project = batchProjector(pool, ctx.log);
    await Promise.all([project(shard, entries), project(shard, entries)]);

    expect(await projectedTables(pool)).toEqual(before);
    expect((await redeliveredTotal()) - skippedBefore).toBe(entries.length);
  });

  it('lets the locks apply a group commit of several shards once, whichever order two persisters hand them in', async () => {
    const before = await projectedTables(pool);
    const shards = [...new Set(appended.map((a) => a.shard))];
    expect(shards.length).toBeGreaterThan(2);
    const batches = shards.map((shard) => ({
      shard,
      entries: appended.filter((a) => a.shard === shard).map(({ streamId, event }) => ({ streamId, event })),
    }));
    await pool.query(
      'UPDATE projection_checkpoints SET stream_ms = 0, stream_seq = 0 WHERE shard = ANY($1::int[])',
      [shards],
    );
    // One shard with no checkpoint at all: both create it, one of them after the other's snapshot.
    await pool.query('DELETE FROM projection_checkpoints WHERE shard = $1', [shards[1]]);
    const skippedBefore = await redeliveredTotal();

    await Promise.all([
      projectBatches(pool, ctx.log, batches),
      projectBatches(pool, ctx.log, [...batches].reverse()),
    ]);

    expect(await projectedTables(pool)).toEqual(before);
    expect((await redeliveredTotal()) - skippedBefore).toBe(
      batches.reduce((n, b) => n + b.entries.length, 0),
    );
  });
});
