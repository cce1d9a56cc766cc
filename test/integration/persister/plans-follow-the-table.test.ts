// A persister starts on an empty database. Its statements are prepared once per connection, and PostgreSQL would
// switch one to a generic plan after five runs, costed on the empty table: the ack UPDATE's was a sequential scan
// of `messages`, which then read the whole table for every ack batch as it grew. Plans must stay per run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEntry } from '#eventlog';
import { batchProjector } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';

let ctx: TestContext;
let pool: Pool;

beforeAll(async () => {
  ctx = await createTestContext();
  pool = await connectPostgres(ctx.databaseUrl, ctx.log, { max: 1 });
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

describe('when the persister runs its statements many times from an empty table on', () => {
  it('plans each run for the table as it is, never with a cached generic plan', async () => {
    const events = shopLog(busyShopOps(12), { shopId: 'shop-plans' });
    const entries: ConsumedEntry[] = events.map((event, i) => ({ streamId: `${1000 + i}-0`, event }));
    const project = batchProjector(pool, ctx.log);
    for (const entry of entries) await project(0, [entry]); // one event per batch: each statement runs often

    const { rows } = await pool.query<{ name: string; generic_plans: string; custom_plans: string }>(
      `SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE 'persister%'`,
    );
    const runs = rows.reduce((sum, row) => sum + Number(row.custom_plans) + Number(row.generic_plans), 0);
    expect(runs).toBeGreaterThan(5 * rows.length); // enough runs that PostgreSQL would have chosen generic plans
    expect(rows.filter((row) => Number(row.generic_plans) > 0)).toEqual([]);
  });
});
