// The history reads the archive for whatever retention trimmed from a stream, also while it is being read:
// trimming between two pages neither loses nor repeats an event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HistoryEntry, shardHistory } from '#eventlog';
import { compareStreamIds } from '#events';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { type Appended, appendAndProject, shopsLog } from './harness';

let ctx: TestContext;
let pool: Pool;
let appended: Appended[];

beforeAll(async () => {
  ctx = await createTestContext();
  appended = await appendAndProject(ctx, shopsLog(40));
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

describe('when retention trims a stream between two pages of a read', () => {
  it('reads the trimmed entries from the archive, in log order, each once', async () => {
    const sizes = new Map<number, number>();
    for (const a of appended) sizes.set(a.shard, (sizes.get(a.shard) ?? 0) + 1);
    const shard = [...sizes].sort((a, b) => b[1] - a[1])[0]![0];
    const log = appended
      .filter((a) => a.shard === shard)
      .sort((a, b) => compareStreamIds(a.streamId, b.streamId));
    expect(log.length).toBeGreaterThan(100);
    const source = { redis: ctx.redis, db: pool, keys: ctx.keys, pageSize: 10 };

    const read: HistoryEntry[] = [];
    for await (const entry of shardHistory(source, shard)) {
      read.push(entry);
      // Mid-way through the second page, trim 60 entries ahead of the reader (all of them archived).
      if (read.length === 15) await ctx.redis.xtrim(ctx.keys.stream(shard), 'MINID', log[75]!.streamId);
    }

    expect(read.map((e) => e.streamId)).toEqual(log.map((a) => a.streamId));
    expect(read.map((e) => e.event)).toEqual(log.map((a) => a.event));
    const sources = read.map((e) => e.from);
    expect(sources.slice(0, 20)).toEqual(Array(20).fill('stream'));
    expect(sources.slice(20, 75)).toEqual(Array(55).fill('archive'));
    expect(sources.slice(75)).toEqual(Array(log.length - 75).fill('stream'));
  });
});
