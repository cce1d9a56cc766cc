import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters } from '#eventlog';
import { type PersisterHandle, start } from '#persister';
import { connectPostgres, inTransaction, loadConfig, type Pool } from '#runtime';
import { createTestContext, type TestContext, waitFor } from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';
import { proxyInFrontOf, type TcpProxy } from '../../support/tcp-proxy';
import { type Appended, appendAll, expectedRows, projectedTables, tablesOf } from './harness';

// SPEC §5.6: PostgreSQL being down or slow delays projections but loses nothing.
let ctx: TestContext;
let proxy: TcpProxy;
let pool: Pool;
let persister: PersisterHandle;
let proxiedUrl: string;
const appended: Appended[] = [];
let day = 0;

async function appendShopDay(shopId: string): Promise<Appended[]> {
  const events = shopLog(busyShopOps(8), { shopId, startMs: Date.UTC(2025, 0, 1) + ++day * 86_400_000 });
  const added = await appendAll(ctx.redis, ctx.keys, events);
  appended.push(...added);
  return added;
}

async function pendingOf(shard: number): Promise<number> {
  const groups = (await ctx.redis.xinfo('GROUPS', ctx.keys.stream(shard))) as unknown[][];
  const persister = groups.find((g) => g[1] === 'persister');
  return Number(persister?.[persister.indexOf('pending') + 1] ?? 0);
}

async function archivedCount(events: Appended[]): Promise<number> {
  const ids = events.map((a) => a.event.id);
  const result = await pool.query('SELECT count(*)::int AS n FROM events WHERE id = ANY($1)', [ids]);
  return result.rows[0].n;
}

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '25' });
  ({ proxy, url: proxiedUrl } = await proxyInFrontOf(ctx.databaseUrl));
  const { config } = loadConfig({ ...ctx.env, DATABASE_URL: proxiedUrl });
  persister = await start(config, { log: ctx.log, healthServer: false });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await persister.stop();
  await proxy.close();
  await pool.end();
  await ctx.cleanup();
});

describe('when PostgreSQL goes away', () => {
  it('holds the events appended meanwhile and projects them all once it is back', async () => {
    await appendShopDay('shop-1');
    await persister.whenCaughtUp();

    proxy.cut();
    const during = await appendShopDay('shop-1');
    const shard = during[0]!.shard;
    await waitFor(async () => (await pendingOf(shard)) > 0, {
      what: 'the persister to hold unprojected entries',
    });
    const readiness = await persister.readiness();
    expect(readiness.ready).toBe(false);
    expect(readiness.checks.postgres).toMatch(/^unreachable/);
    expect(await archivedCount(during)).toBe(0);

    proxy.resume();
    await persister.whenCaughtUp(20_000);
    expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows(appended)));
    expect(await listDeadLetters(ctx.redis, ctx.keys)).toEqual([]);
    expect((await persister.readiness()).ready).toBe(true);
  });
});

describe('when PostgreSQL stops answering', () => {
  it('waits for it and then projects everything, dead-lettering nothing', async () => {
    proxy.stall();
    const during = await appendShopDay('shop-2');
    await waitFor(async () => (await pendingOf(during[0]!.shard)) > 0, {
      what: 'a batch stuck on PostgreSQL',
    });
    const readiness = await persister.readiness();
    expect(readiness.checks.postgres).toMatch(/^unreachable \(no answer/);
    expect(await archivedCount(during)).toBe(0);

    proxy.resume();
    await persister.whenCaughtUp(20_000);
    expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows(appended)));
    expect(await listDeadLetters(ctx.redis, ctx.keys)).toEqual([]);
  });
});

describe('when the connection drops between two statements of a batch', () => {
  it('fails the transaction instead of the process', async () => {
    const proxiedPool = await connectPostgres(proxiedUrl, ctx.log, { applySchema: false });
    let hasEnded = false;
    const transaction = inTransaction(proxiedPool, async (db) => {
      await db.query('SELECT 1');
      db.once('end', () => {
        hasEnded = true;
      });
      proxy.cut(); // the client emits 'error' now, while no statement is running
      await waitFor(() => hasEnded, { what: 'the connection to end' });
      await db.query('SELECT 1');
    });
    await expect(transaction).rejects.toThrow(/Connection terminated|not queryable/);
    proxy.resume();
    await proxiedPool.end();
  });
});
