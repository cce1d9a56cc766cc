import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters } from '#eventlog';
import { type PersisterHandle, readCheckpoints, start } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import {
  createTestContext,
  type SpawnedService,
  spawnService,
  type TestContext,
  waitFor,
  waitForLog,
} from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';
import { type Appended, appendAll, expectedRows, projectedTables, tablesOf } from './harness';

// A persister killed with SIGKILL mid-stream: its uncommitted batch rolls back, its leases expire, and the
// survivor claims its pending entries. Every event ends up projected, once.
let ctx: TestContext;
let pool: Pool;
let victim: SpawnedService;
let survivor: PersisterHandle;

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '10', CONSUMER_LEASE_MS: '1000' });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await victim?.kill();
  await survivor?.stop();
  await pool.end();
  await ctx.cleanup();
});

async function archivedCount(): Promise<number> {
  return (await pool.query('SELECT count(*)::int AS n FROM events')).rows[0].n;
}

describe('when a persister is killed in the middle of the log', () => {
  it('leaves every event projected exactly once by the one that survives', async () => {
    victim = spawnService('persister', { ...ctx.env, LOG_LEVEL: 'info' });
    await waitForLog(victim, 'broker started');
    survivor = await start(ctx.config, { log: ctx.log, healthServer: false });
    await waitFor(() => survivor.shards().length === 2, { what: 'the shards to be shared' });

    const shops = Array.from({ length: 8 }, (_, i) => `shop-${i}`);
    const appended: Appended[] = [];
    for (const [i, shopId] of shops.entries()) {
      const events = shopLog(busyShopOps(50), { shopId, startMs: Date.UTC(2025, 0, 1) + i * 3_600_000 });
      appended.push(...(await appendAll(ctx.redis, ctx.keys, events)));
    }
    await waitFor(async () => (await archivedCount()) > appended.length / 10, {
      what: 'projection under way',
    });
    await victim.kill('SIGKILL');
    const archivedAtKill = await archivedCount();
    expect(archivedAtKill).toBeLessThan(appended.length); // the kill did land in the middle of the log

    const late = shopLog(busyShopOps(20), { shopId: 'shop-late', startMs: Date.UTC(2025, 1, 1) });
    appended.push(...(await appendAll(ctx.redis, ctx.keys, late)));
    await waitFor(() => survivor.shards().length === 4, { what: 'the survivor to take over every shard' });
    await survivor.whenCaughtUp(30_000);

    expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows(appended)));
    expect(await listDeadLetters(ctx.redis, ctx.keys)).toEqual([]);
    const checkpoints = await readCheckpoints(pool);
    for (const shard of ctx.keys.allShards()) {
      const last = appended.filter((a) => a.shard === shard).at(-1);
      if (last) expect(checkpoints.get(shard)).toBe(last.streamId);
    }
  }, 60_000);
});
