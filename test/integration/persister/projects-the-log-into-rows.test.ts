import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PersisterHandle, readCheckpoints, start } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { busyShopOps, type ShopOp, shopLog } from '../../support/shop-log';
import { appendAll, expectedRows, projectedTables, tablesOf } from './harness';

// Odd batch sizes split notifies from their acks and registrations from their revokes.
let ctx: TestContext;
let pool: Pool;
let persister: PersisterHandle | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '7' });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterEach(async () => {
  await persister?.stop();
  persister = undefined;
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

const churn: ShopOp[] = [
  { op: 'fail', pick: 1, attempts: 8 },
  { op: 'handle', pick: 2, status: 3 },
  { op: 'handle', pick: 2, status: 4 },
  { op: 'revoke', client: 2 },
  { op: 'notify', client: 3 },
  { op: 'register', client: 2, type: 'main' },
  { op: 'login', client: 2 },
  { op: 'notify', client: 3 },
  { op: 'ack', client: 2, count: 2 },
  { op: 'close', client: 1 },
  { op: 'notify', client: 1 },
];

describe('when shops use the broker', () => {
  it('projects devices, connections, messages and the archive exactly as the fold says', async () => {
    persister = await start(ctx.config, { log: ctx.log, healthServer: false });
    const events = ['shop-a', 'shop-b', 'shop-c'].flatMap((shopId, i) =>
      shopLog([...busyShopOps(10 + i * 5), ...churn], {
        shopId,
        startMs: Date.UTC(2025, 2, 1) + i * 100_000,
      }),
    );
    const appended = await appendAll(ctx.redis, ctx.keys, events);
    await persister.whenCaughtUp();

    const projected = await projectedTables(pool);
    expect(projected).toEqual(tablesOf(expectedRows(appended)));
    expect(projected.events).toHaveLength(events.length);
    expect(projected.messages.filter((m) => m.state === 'delivered').length).toBeGreaterThan(20);
    expect(projected.messages.some((m) => m.state === 'handled')).toBe(true);
    expect(projected.devices.filter((d) => d.revoked_at === null)).toHaveLength(9);
  });

  it('moves each shard checkpoint to the last event it projected', async () => {
    persister = await start(ctx.config, { log: ctx.log, healthServer: false });
    const appended = await appendAll(ctx.redis, ctx.keys, shopLog(busyShopOps(3), { shopId: 'shop-d' }));
    await persister.whenCaughtUp();

    const checkpoints = await readCheckpoints(pool);
    const last = appended[appended.length - 1]!;
    expect(checkpoints.get(last.shard)).toBe(last.streamId);
  });
});
