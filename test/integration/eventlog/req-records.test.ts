// The req_id records on a real Redis (SPEC §3, issue 19): the same req_id from the same device within 24 h is a
// duplicate, kept as 38-byte entries in one hash per shop instead of a key per notify (how long they stay is
// req-window.test.ts). Records that share a bucket are never confused, an expired one neither matches nor stays,
// records of earlier versions (a key per req_id; a hash of 1,024 buckets) are still honoured, and a notify with
// nothing to remember leaves nothing.
import { describe, expect, it } from 'vitest';
import { REQ_ID_TTL_S } from '#eventlog';
import { newEventId, reqRecordOf } from '#events';
import { eventLogOnRedis, notifyRequested, registerAll } from '#test-support';

const ENTRY_BYTES = 38;

describe('req_id records', () => {
  const world = eventLogOnRedis();

  const shopWithDevices = (shop: string) => registerAll(world.log, shop, { m1: 'main', w1: 'sub' });

  const notify = (shop: string, reqId: string, remember = true) =>
    world.log.appendNotify(
      notifyRequested(shop, { req_id: reqId, from_client_id: 'w1', table_id: 3, type: 'add_dish' }),
      { tokenId: 'w1-t1', type: 'sub', remember },
    );

  /** req_ids of one sender that land in one bucket, found by trying. */
  function sameBucket(count: number): string[] {
    const byBucket = new Map<string, string[]>();
    for (let i = 0; ; i++) {
      const reqId = `r-${i}`;
      const { bucket } = reqRecordOf('w1', reqId);
      const list = byBucket.get(bucket) ?? [];
      list.push(reqId);
      byBucket.set(bucket, list);
      if (list.length === count) return list;
    }
  }

  it('tells apart req_ids that share a bucket, and answers each repeat with its own first event', async () => {
    await shopWithDevices('rr-1');
    const reqIds = sameBucket(5);
    const first = [];
    for (const reqId of reqIds) first.push(await notify('rr-1', reqId));
    expect(first.every((o) => !o.isDuplicate)).toBe(true);
    expect(new Set(first.map((o) => o.eventId)).size).toBe(5);
    for (const [i, reqId] of [...reqIds].reverse().entries()) {
      const again = await notify('rr-1', reqId);
      expect(again).toMatchObject({ isDuplicate: true, eventId: first[reqIds.length - 1 - i]?.eventId });
    }
    expect(await world.ctx.redis.xlen(world.ctx.keys.streamOfShop('rr-1'))).toBe(2 + 5); // two registrations, five notifies
    const { bucket } = reqRecordOf('w1', reqIds[0]!);
    const stored = await world.ctx.redis.hgetBuffer(world.ctx.keys.requests('rr-1'), bucket);
    expect(stored?.length).toBe(5 * ENTRY_BYTES);
  });

  it('keeps no key per notify: one hash per shop, 38 bytes per record', async () => {
    await shopWithDevices('rr-2');
    const shopKeys = async () =>
      (await world.ctx.redis.keys(`${world.ctx.keys.devices('rr-2').replace(/devices$/, '')}*`)).sort();
    await notify('rr-2', 'many-0');
    const afterOne = await shopKeys();
    expect(afterOne).toContain(world.ctx.keys.requests('rr-2'));
    for (let i = 1; i < 200; i++) await notify('rr-2', `many-${i}`);
    expect(await shopKeys()).toEqual(afterOne);
    const buckets = await world.ctx.redis.hvalsBuffer(world.ctx.keys.requests('rr-2'));
    expect(buckets.reduce((n, b) => n + b.length, 0)).toBe(200 * ENTRY_BYTES);
    expect(await world.ctx.redis.ttl(world.ctx.keys.requests('rr-2'))).toBeGreaterThan(REQ_ID_TTL_S - 60);
  });

  it('lets an expired record neither match nor stay: it is cut when its bucket is next written', async () => {
    await shopWithDevices('rr-3');
    const [old, fresh] = sameBucket(2) as [string, string];
    const { bucket, tag } = reqRecordOf('w1', old);
    // A record written 24 h and 1 s ago, as the script lays it out: tag, big-endian seconds, event id.
    const [seconds] = await world.ctx.redis.time();
    const time = Buffer.alloc(4);
    time.writeUInt32BE(Number(seconds) - REQ_ID_TTL_S - 1);
    const staleId = newEventId(Date.now() - (REQ_ID_TTL_S + 1) * 1000);
    await world.ctx.redis.hset(
      world.ctx.keys.requests('rr-3'),
      bucket,
      Buffer.concat([tag, time, Buffer.from(staleId)]),
    );

    const outcome = await notify('rr-3', old);
    expect(outcome.isDuplicate).toBe(false);
    expect(outcome.eventId).not.toBe(staleId);
    let stored = await world.ctx.redis.hgetBuffer(world.ctx.keys.requests('rr-3'), bucket);
    expect(stored?.length).toBe(ENTRY_BYTES); // the stale entry went, the new one is there
    expect(stored?.subarray(12).toString()).toBe(outcome.eventId);

    await notify('rr-3', fresh);
    stored = await world.ctx.redis.hgetBuffer(world.ctx.keys.requests('rr-3'), bucket);
    expect(stored?.length).toBe(2 * ENTRY_BYTES);
    expect(await notify('rr-3', old)).toMatchObject({ isDuplicate: true, eventId: outcome.eventId });
  });

  it('still honours a record an earlier version kept as a key of its own', async () => {
    await shopWithDevices('rr-4');
    const earlier = newEventId();
    await world.ctx.redis.set(world.ctx.keys.dedup('rr-4', 'w1', 'from-before'), earlier, 'EX', 600);
    expect(await notify('rr-4', 'from-before')).toEqual({ eventId: earlier, isDuplicate: true });
  });

  it('still honours a record of the version before the window (1,024 buckets, kept 24 h)', async () => {
    await shopWithDevices('rr-6');
    const { earlierBucket, tag } = reqRecordOf('w1', 'from-the-day-before');
    const [seconds] = await world.ctx.redis.time();
    const time = Buffer.alloc(4);
    time.writeUInt32BE(Number(seconds) - 3600);
    const earlier = newEventId(Date.now() - 3_600_000);
    await world.ctx.redis.hset(
      world.ctx.keys.earlierRequests('rr-6'),
      earlierBucket,
      Buffer.concat([tag, time, Buffer.from(earlier)]),
    );
    expect(await notify('rr-6', 'from-the-day-before')).toEqual({ eventId: earlier, isDuplicate: true });
  });

  it('records nothing for a notify that has no req_id to remember', async () => {
    await shopWithDevices('rr-5');
    const a = await notify('rr-5', 'stand-in', false);
    const b = await notify('rr-5', 'stand-in', false);
    expect(a.isDuplicate || b.isDuplicate).toBe(false);
    expect(await world.ctx.redis.exists(world.ctx.keys.requests('rr-5'))).toBe(0);
  });
});
