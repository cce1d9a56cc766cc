import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type PersisterHandle, start } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';
import { type Appended, appendAll } from './harness';

// SPEC §4: streams are trimmed only after every event in the trimmed range is archived in PostgreSQL, and the
// dispatcher must still find every event it has not finished.
const contexts: TestContext[] = [];
let persister: PersisterHandle | undefined;
let pool: Pool | undefined;

afterEach(async () => {
  await persister?.stop();
  await pool?.end();
  persister = undefined;
  pool = undefined;
});
afterAll(async () => {
  for (const ctx of contexts) await ctx.cleanup();
});

async function setUp(retentionMs: string) {
  const ctx = await createTestContext({ STREAM_RETENTION_MS: retentionMs });
  contexts.push(ctx);
  const shopId = 'shop-r';
  const stream = ctx.keys.streamOfShop(shopId);
  // A dispatcher that has not read anything yet.
  await ctx.redis.xgroup('CREATE', stream, 'dispatcher', '0', 'MKSTREAM');
  persister = await start(ctx.config, { log: ctx.log, healthServer: false });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
  const idsInStream = async () => (await ctx.redis.xrange(stream, '-', '+')).map(([id]) => id);
  return { ctx, shopId, stream, idsInStream };
}

async function archivedIds(events: Appended[]): Promise<Set<string>> {
  const result = await pool!.query('SELECT id FROM events WHERE id = ANY($1)', [
    events.map((a) => a.event.id),
  ]);
  return new Set(result.rows.map((r) => r.id as string));
}

describe('when archived events are past the retention time', () => {
  it('trims only what the dispatcher has finished, and never an event missing from the archive', async () => {
    const { ctx, shopId, stream, idsInStream } = await setUp('0');
    const first = await appendAll(ctx.redis, ctx.keys, shopLog(busyShopOps(3), { shopId }));
    await persister!.whenCaughtUp();
    const ids = first.map((a) => a.streamId);

    await persister!.trimStreams();
    expect(await idsInStream()).toEqual(ids); // the dispatcher is at the start

    await ctx.redis.xgroup('SETID', stream, 'dispatcher', ids[5]!);
    await persister!.trimStreams();
    expect(await idsInStream()).toEqual(ids.slice(6)); // trimmed up to the dispatcher's first unread event

    await ctx.redis.xreadgroup('GROUP', 'dispatcher', 'd1', 'COUNT', 2, 'STREAMS', stream, '>');
    await persister!.trimStreams();
    expect(await idsInStream()).toEqual(ids.slice(6)); // its two pending events stay

    await persister!.drain(); // nothing is archived from here on
    const second = await appendAll(
      ctx.redis,
      ctx.keys,
      shopLog(busyShopOps(2), { shopId, startMs: Date.UTC(2025, 6, 1) }),
    );
    await ctx.redis.xack(stream, 'dispatcher', ids[6]!, ids[7]!);
    await ctx.redis.xgroup('SETID', stream, 'dispatcher', '$');
    expect(await persister!.trimStreams()).toBeGreaterThan(0);

    const kept = new Set(await idsInStream());
    const archived = await archivedIds([...first, ...second]);
    for (const { streamId, event } of [...first, ...second]) {
      if (!archived.has(event.id)) expect(kept.has(streamId)).toBe(true);
    }
    expect([...kept]).toEqual([ids.at(-1), ...second.map((a) => a.streamId)]);
  });
});

describe('when archived events are younger than the retention time', () => {
  it('keeps them in the stream', async () => {
    const { ctx, shopId, stream, idsInStream } = await setUp('3600000');
    const appended = await appendAll(ctx.redis, ctx.keys, shopLog(busyShopOps(3), { shopId }));
    await persister!.whenCaughtUp();
    await ctx.redis.xgroup('SETID', stream, 'dispatcher', '$');

    expect(await persister!.trimStreams()).toBe(0);
    expect(await idsInStream()).toEqual(appended.map((a) => a.streamId));
  });
});
