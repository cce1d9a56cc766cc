import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEntry } from '#eventlog';
import { batchProjector, emptyView, evolve } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { shopLog, shopOpsArbitrary } from '../../support/shop-log';
import { projectedTables, tablesOf } from './harness';

// store.ts writes a batch kind by kind and merges changes to one row; projection.ts applies them one at a time.
// Both must give the same rows for any log, any batch split, and any event processed again later.
let ctx: TestContext;
let pool: Pool;

beforeAll(async () => {
  ctx = await createTestContext();
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

async function resetTables(): Promise<void> {
  await pool.query(
    'DELETE FROM events; DELETE FROM devices; DELETE FROM connections; DELETE FROM messages; DELETE FROM projection_checkpoints',
  );
}

describe('when a batch holds several changes to the same rows', () => {
  it('writes the same rows as applying each event in turn, whatever the batch split and replays', async () => {
    const project = batchProjector(pool, ctx.log);
    await fc.assert(
      fc.asyncProperty(
        shopOpsArbitrary(),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(200), { maxLength: 8 }),
        async (ops, batchSizes, replays) => {
          await resetTables();
          const events = shopLog(ops, { shopId: 'shop-f' });
          const entries: ConsumedEntry[] = events.map((event, i) => ({ streamId: `${1000 + i}-0`, event }));
          const expected = emptyView();
          for (const { streamId, event } of entries) evolve(expected, event, { shard: 0, streamId });

          for (let i = 0, b = 0; i < entries.length; b++) {
            const size = batchSizes[b % batchSizes.length]!;
            await project(0, entries.slice(i, i + size));
            i += size;
          }
          // Replays out of order, past the checkpoint: only the SQL guards keep the rows as they are.
          for (const r of replays) {
            if (entries.length === 0) break;
            const entry = entries[r % entries.length]!;
            await pool.query('DELETE FROM projection_checkpoints');
            await project(0, [entry]);
            evolve(expected, entry.event, { shard: 0, streamId: entry.streamId });
          }
          expect(await projectedTables(pool)).toEqual(tablesOf(expected));
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
