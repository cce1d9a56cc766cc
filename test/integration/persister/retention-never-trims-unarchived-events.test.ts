import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type PersisterHandle, start } from '#persister';
import { connectPostgres, loadConfig, type Pool } from '#runtime';
import { createTestContext, type TestContext, waitFor } from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';
import { proxyInFrontOf } from '../../support/tcp-proxy';
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

describe('while PostgreSQL is down', () => {
  it('trims nothing unarchived, reports the stream growing in /metrics, and trims again once it is back', async () => {
    const ctx = await createTestContext({ STREAM_RETENTION_MS: '0' });
    contexts.push(ctx);
    const { proxy, url: proxiedUrl } = await proxyInFrontOf(ctx.databaseUrl);
    const { config } = loadConfig({ ...ctx.env, DATABASE_URL: proxiedUrl });
    const shopId = 'shop-down';
    const stream = ctx.keys.streamOfShop(shopId);
    const shard = ctx.keys.shardOf(shopId);
    await ctx.redis.xgroup('CREATE', stream, 'dispatcher', '$', 'MKSTREAM'); // a dispatcher that has read it all
    persister = await start(config, { log: ctx.log });
    try {
      const metric = async (name: string) => {
        const text = await (await fetch(`http://127.0.0.1:${persister!.port}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith(`${name}{shard="${shard}"}`));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
      };
      const archivedBefore = await appendAll(ctx.redis, ctx.keys, shopLog(busyShopOps(2), { shopId }));
      await persister.whenCaughtUp();
      await ctx.redis.xgroup('SETID', stream, 'dispatcher', '$');
      await persister.trimStreams();
      expect(await ctx.redis.xlen(stream)).toBe(1); // the newest archived event stays as the mark

      proxy.cut();
      const unarchived = await appendAll(
        ctx.redis,
        ctx.keys,
        shopLog(busyShopOps(2), { shopId, startMs: Date.now() - 3_600_000 }), // older than any tail
      );
      await ctx.redis.xgroup('SETID', stream, 'dispatcher', '$');
      await expect(persister.trimStreams()).rejects.toThrow();
      const held = await ctx.redis.xrange(stream, '-', '+');
      expect(held.map(([id]) => id)).toEqual([
        archivedBefore.at(-1)!.streamId,
        ...unarchived.map((a) => a.streamId),
      ]);
      expect(await metric('broker_stream_entries')).toBe(held.length);
      expect(await metric('broker_stream_oldest_entry_age_seconds')).toBeGreaterThanOrEqual(0);

      proxy.resume();
      await persister.whenCaughtUp(20_000);
      await waitFor(async () => (await persister!.trimStreams()) > 0, { what: 'trimming to resume' });
      expect(await ctx.redis.xlen(stream)).toBe(1);
      expect(await metric('broker_stream_entries')).toBe(1);
    } finally {
      await persister.stop();
      persister = undefined;
      await proxy.close();
    }
  });
});
