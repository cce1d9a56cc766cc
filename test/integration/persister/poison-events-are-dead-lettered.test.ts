import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters } from '#eventlog';
import { createEvent, type EventOf } from '#events';
import { type PersisterHandle, start } from '#persister';
import { connectPostgres, type Pool, registry } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { busyShopOps, fixedEventId, shopLog } from '../../support/shop-log';
import { appendAll, expectedRows, projectedTables, tablesOf } from './harness';

let ctx: TestContext;
let pool: Pool;
let persister: PersisterHandle;

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '50' });
  persister = await start(ctx.config, { log: ctx.log, healthServer: false });
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterEach(async () => {
  await pool.query('DELETE FROM events; DELETE FROM devices; DELETE FROM connections; DELETE FROM messages');
});
afterAll(async () => {
  await persister.stop();
  await pool.end();
  await ctx.cleanup();
});

async function deadLetterCount(kind: string): Promise<number> {
  const metric = await registry.getSingleMetric('broker_dead_letters_total')?.get();
  return metric?.values.find((v) => v.labels.group === 'persister' && v.labels.kind === kind)?.value ?? 0;
}

describe('when an entry in the log is not a valid event', () => {
  it('parks it in the dead-letter stream and projects the events after it', async () => {
    const shopId = 'shop-invalid';
    const before = await deadLetterCount('invalid');
    const [head, tail] = [
      shopLog(busyShopOps(3), { shopId }),
      shopLog(busyShopOps(4), { shopId, startMs: Date.UTC(2025, 5, 1) }),
    ];
    const first = await appendAll(ctx.redis, ctx.keys, head);
    const stream = ctx.keys.streamOfShop(shopId);
    const badId = await ctx.redis.xadd(stream, '*', 't', 'NotifyRequested', 'e', '{"id": "not json');
    const second = await appendAll(ctx.redis, ctx.keys, tail);
    await persister.whenCaughtUp();

    const dead = await listDeadLetters(ctx.redis, ctx.keys);
    expect(dead).toEqual([
      expect.objectContaining({ group: 'persister', stream_id: badId, reason: 'entry body is not JSON' }),
    ]);
    expect(dead[0]!.fields.e).toBe('{"id": "not json');
    expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows([...first, ...second])));
    expect(await deadLetterCount('invalid')).toBe(before + 1);
  });
});

describe('when a valid event cannot be projected', () => {
  it('isolates it from its batch, parks it, and projects every other event', async () => {
    const shopId = 'shop-poison';
    const before = await deadLetterCount('poison');
    const head = shopLog(busyShopOps(5), { shopId });
    // PostgreSQL's jsonb refuses the NUL character that JSON (and so the event schema) allows.
    const notify = head.find((e): e is EventOf<'NotifyRequested'> => e.type === 'NotifyRequested')!;
    const poison = createEvent({
      type: 'NotifyRequested',
      shopId,
      source: 'edge:e1',
      id: fixedEventId(Date.UTC(2025, 3, 1), 1),
      nowMs: Date.UTC(2025, 3, 1),
      data: { ...notify.data, req_id: 'poison', data: { note: 'no\u0000te' } },
    });
    const tail = shopLog(busyShopOps(5), { shopId, startMs: Date.UTC(2025, 5, 1) });
    const appended = await appendAll(ctx.redis, ctx.keys, [...head, poison, ...tail]);
    await persister.whenCaughtUp(20_000);

    const dead = (await listDeadLetters(ctx.redis, ctx.keys)).filter((d) => d.fields.e?.includes('poison'));
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ group: 'persister', stream_id: appended[head.length]!.streamId });
    expect(dead[0]!.reason).toMatch(/^handler failed: .*Unicode/);
    const projectable = appended.filter((a) => a.event.id !== poison.id);
    expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows(projectable)));
    expect(await deadLetterCount('poison')).toBe(before + 1);
  });
});
