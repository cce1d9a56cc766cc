// The audit reads a shard's live tail once and each shop's older events from the archive (shop-history.ts); for
// every shop that is exactly the shop's part of the shard's history as replay reads it (shardHistory): the same
// events, in the same order, from the same place (the stream's copy where the stream still holds one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HistoryEntry, shardHistory } from '#eventlog';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { readShardTail, shopHistory } from '../../../cli/src/commands/shop-history';
import { appendAndProject, SHOPS, shopsLog, trimOlderHalf } from './harness';

let ctx: TestContext;
let pool: Pool;

beforeAll(async () => {
  ctx = await createTestContext({ SHARDS: '2' }); // several shops share a shard
  const appended = await appendAndProject(ctx, shopsLog(9));
  await trimOlderHalf(ctx, appended);
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool?.end();
  await ctx?.cleanup();
});

async function all(entries: AsyncIterable<HistoryEntry>): Promise<HistoryEntry[]> {
  const read: HistoryEntry[] = [];
  for await (const entry of entries) read.push(entry);
  return read;
}

describe('when a shard holds several shops and its stream only its newer half', () => {
  it("reads each shop's events as the shard's history holds them, in pages of any size", async () => {
    const source = { redis: ctx.redis, db: pool, keys: ctx.keys, pageSize: 7 };
    let shopsSeen = 0;
    for (const shard of ctx.keys.allShards()) {
      const whole = await all(shardHistory(source, shard));
      const tail = await readShardTail(source, shard);
      expect(tail.start).not.toBeNull();
      expect(new Set(whole.map((e) => e.from))).toEqual(new Set(['archive', 'stream']));
      for (const shopId of SHOPS.filter((shop) => ctx.keys.shardOf(shop) === shard)) {
        const own = whole.filter((entry) => entry.event.shop_id === shopId);
        expect(await all(shopHistory(source, tail, shopId))).toEqual(own);
        shopsSeen++;
      }
    }
    expect(shopsSeen).toBe(SHOPS.length);
  });
});
