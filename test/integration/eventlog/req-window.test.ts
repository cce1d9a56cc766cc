// The req_id records' window (SPEC §3, issue 19) on real Redis, real PostgreSQL and the real persister: Redis
// keeps a req_id's exact record only until its event is archived and the window is over; a resend after that is
// told by the shard's filters to look in the archive, and gets the first event again. A record whose event is not
// archived stays, a record made before the filters existed keeps its 24 h, a false positive of the filters appends
// the notify once, and a full filter is followed by a bigger one that is asked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, type NotifyArchive, notifyArchiveOn, REQ_ID_TTL_S } from '#eventlog';
import { reqRecordOf } from '#events';
import { start as startPersister } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, notifyRequested, registerAll, type TestContext, waitFor } from '#test-support';

const ENTRY_BYTES = 38;
const HEADER_BYTES = 128;
const FIRST_FILTER_BYTES = 262_144 / 8;

describe('req_id records after their window', () => {
  let ctx: TestContext;
  let pool: Pool;
  let persister: Awaited<ReturnType<typeof startPersister>>;
  let log: EventLog;
  const lookups: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext();
    persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
    pool = await connectPostgres(ctx.databaseUrl, ctx.log);
    const archive = notifyArchiveOn(pool);
    const counted: NotifyArchive = (shop, sender, reqId) => {
      lookups.push(reqId);
      return archive(shop, sender, reqId);
    };
    // A window of 0 s: a record may go as soon as its second is over and its event archived.
    log = new EventLog(ctx.redis, ctx.keys, { archive: counted, reqWindowS: 0 });
  });
  afterAll(async () => {
    await persister?.stop();
    await pool?.end();
    await ctx?.cleanup();
  });

  const notify = (shop: string, reqId: string) =>
    log.appendNotify(notifyRequested(shop, { req_id: reqId, from_client_id: 'w1' }), {
      tokenId: 'w1-t1',
      type: 'sub',
    });

  /** req_ids of w1 that share a bucket, found by trying. */
  function sameBucket(count: number, prefix: string): string[] {
    const byBucket = new Map<string, string[]>();
    for (let i = 0; ; i++) {
      const reqId = `${prefix}-${i}`;
      const { bucket } = reqRecordOf('w1', reqId);
      const list = byBucket.get(bucket) ?? [];
      list.push(reqId);
      byBucket.set(bucket, list);
      if (list.length === count) return list;
    }
  }

  const bucketOf = async (shop: string, reqId: string) =>
    (await ctx.redis.hgetBuffer(ctx.keys.requests(shop), reqRecordOf('w1', reqId).bucket)) ?? Buffer.alloc(0);
  const entriesOf = async (shop: string, reqId: string) => (await bucketOf(shop, reqId)).length / ENTRY_BYTES;
  const eventCount = async (shop: string) =>
    Number(
      (
        await pool.query(`SELECT count(*) AS n FROM events WHERE shop_id = $1 AND type = 'NotifyRequested'`, [
          shop,
        ])
      ).rows[0].n,
    );
  const streamLength = (shop: string) => ctx.redis.xlen(ctx.keys.streamOfShop(shop));
  const filterKeys = (shop: string) => {
    const shard = ctx.keys.shardOf(shop);
    return [ctx.keys.reqFilter(shard, 0), ctx.keys.reqFilter(shard, 1)];
  };

  /** Waits until Redis's clock is past the given record's second, then archives the shard up to a newer event. */
  async function archivePast(shop: string, reqId: string, marker: string) {
    const entry = await bucketOf(shop, reqId);
    const at = entry.indexOf(reqRecordOf('w1', reqId).tag);
    const recordedS = entry.readUInt32BE(at + 8);
    await waitFor(async () => Number((await ctx.redis.time())[0]) >= recordedS + 2, {
      timeoutMs: 5_000,
      what: "Redis's clock to pass the record's second",
    });
    await notify(shop, marker); // a newer event of the shard, which the archive then holds
    await persister.whenCaughtUp();
    await persister.trimStreams(); // the retention round tells Redis how far the shard is archived
  }

  it('lets an archived record go after its window; a resend then gets the first event from the archive', async () => {
    await registerAll(log, 'rw-1', { m1: 'main', w1: 'sub' });
    const [first, next] = sameBucket(2, 'rw1') as [string, string];
    const original = await notify('rw-1', first);
    await archivePast('rw-1', first, 'rw1-marker');

    await notify('rw-1', next); // writes the bucket: the archived record of `first` is cut
    expect(await entriesOf('rw-1', first)).toBe(1);
    expect((await bucketOf('rw-1', first)).subarray(12).toString()).not.toBe(original.eventId);

    const before = await streamLength('rw-1');
    lookups.length = 0;
    const resend = await notify('rw-1', first);
    expect(resend).toEqual({ eventId: original.eventId, isDuplicate: true });
    expect(lookups).toEqual([first]); // the filters sent it to the archive
    expect(await streamLength('rw-1')).toBe(before);
    await persister.whenCaughtUp();
    expect(await eventCount('rw-1')).toBe(3); // first, the marker, next: no second event of `first`
  });

  it('keeps a record whose event is not archived past its window, and answers its resend from Redis', async () => {
    await registerAll(log, 'rw-2', { m1: 'main', w1: 'sub' });
    const [first, next] = sameBucket(2, 'rw2') as [string, string];
    const original = await notify('rw-2', first);
    await archivePast('rw-2', first, 'rw2-marker');
    // As if the persister had not archived it: the archive's mark is behind the record (PostgreSQL away).
    await ctx.redis.set(ctx.keys.archivedThrough(ctx.keys.shardOf('rw-2')), 0);

    await notify('rw-2', next);
    expect(await entriesOf('rw-2', first)).toBe(2);
    lookups.length = 0;
    expect(await notify('rw-2', first)).toEqual({ eventId: original.eventId, isDuplicate: true });
    expect(lookups).toEqual([]);
  });

  it('keeps a record made before the filters existed for its 24 h', async () => {
    await registerAll(log, 'rw-3', { m1: 'main', w1: 'sub' });
    const [first, next] = sameBucket(2, 'rw3') as [string, string];
    const original = await notify('rw-3', first);
    await ctx.redis.del(...filterKeys('rw-3')); // `first` is in no filter, as a record of an earlier version
    await archivePast('rw-3', first, 'rw3-marker');

    await notify('rw-3', next); // its filters are created now, after `first` was recorded
    expect(await entriesOf('rw-3', first)).toBe(2);
    lookups.length = 0;
    expect(await notify('rw-3', first)).toEqual({ eventId: original.eventId, isDuplicate: true });
    expect(lookups).toEqual([]);
    const ttl = await ctx.redis.ttl(ctx.keys.requests('rw-3'));
    expect(ttl).toBeGreaterThan(REQ_ID_TTL_S - 60);
  });

  it('appends a new req_id that the filters wrongly say they hold, once, even when sent several times at once', async () => {
    await registerAll(log, 'rw-4', { m1: 'main', w1: 'sub' });
    await notify('rw-4', 'rw4-opens-the-filter');
    // Every bit of the first filter set: every req_id is a false positive of it.
    for (const key of filterKeys('rw-4')) {
      if ((await ctx.redis.strlen(key)) > 0)
        await ctx.redis.setrange(key, HEADER_BYTES, Buffer.alloc(FIRST_FILTER_BYTES, 0xff));
    }
    lookups.length = 0;
    const reqIds = Array.from({ length: 10 }, (_, i) => `rw4-${i}`);
    const outcomes = await Promise.all(
      reqIds.flatMap((reqId) => [notify('rw-4', reqId), notify('rw-4', reqId)]),
    );
    expect(lookups.length).toBeGreaterThanOrEqual(reqIds.length);
    for (const [i, reqId] of reqIds.entries()) {
      const [a, b] = [outcomes[2 * i]!, outcomes[2 * i + 1]!];
      expect(a.eventId).toBe(b.eventId);
      expect([a.isDuplicate, b.isDuplicate].sort()).toEqual([false, true]);
      expect(await notify('rw-4', reqId)).toEqual({ eventId: a.eventId, isDuplicate: true });
    }
    await persister.whenCaughtUp();
    expect(await eventCount('rw-4')).toBe(1 + reqIds.length);
  });

  it('starts a filter twice as big when one is full, and asks it too', async () => {
    await registerAll(log, 'rw-5', { m1: 'main', w1: 'sub' });
    await notify('rw-5', 'rw5-opens-the-filter');
    const today = await waitFor(async () => {
      for (const key of filterKeys('rw-5')) if ((await ctx.redis.strlen(key)) > 0) return key;
      return null;
    });
    expect(await ctx.redis.strlen(today)).toBe(HEADER_BYTES + FIRST_FILTER_BYTES);
    // The first filter's count at its capacity (FIRST_BITS / 12 entries): the next notify starts the second one.
    await ctx.redis.bitfield(today, 'SET', 'u32', 64, Math.floor(262_144 / 12));
    const later = await notify('rw-5', 'rw5-into-the-second');
    const counts = await ctx.redis.call('BITFIELD', today, 'GET', 'u32', 64, 'GET', 'u32', 96);
    expect(counts).toEqual([Math.floor(262_144 / 12), 1]);
    expect(await ctx.redis.strlen(today)).toBeGreaterThan(HEADER_BYTES + FIRST_FILTER_BYTES);

    // Its exact record gone, a resend is found by the second filter and answered from the archive.
    await persister.whenCaughtUp();
    await ctx.redis.hdel(ctx.keys.requests('rw-5'), reqRecordOf('w1', 'rw5-into-the-second').bucket);
    lookups.length = 0;
    expect(await notify('rw-5', 'rw5-into-the-second')).toEqual({
      eventId: later.eventId,
      isDuplicate: true,
    });
    expect(lookups).toEqual(['rw5-into-the-second']);
  });

  it("keeps a refused notify's req_id in the filters: sent again once it can be appended, it is looked up and appended once", async () => {
    // Today's filters are probed and written in one step, before the notify is known to be appended: a refused
    // one leaves its req_id there, and its resend costs one archive lookup, which finds nothing.
    await registerAll(log, 'rw-6', { w1: 'sub' });
    await expect(notify('rw-6', 'rw6-refused-first')).rejects.toMatchObject({ code: 'NO_MAIN_DEVICE' });
    await registerAll(log, 'rw-6', { m1: 'main' });
    lookups.length = 0;
    const first = await notify('rw-6', 'rw6-refused-first');
    expect(first.isDuplicate).toBe(false);
    expect(lookups).toEqual(['rw6-refused-first']);
    expect(await notify('rw-6', 'rw6-refused-first')).toEqual({ eventId: first.eventId, isDuplicate: true });
    await persister.whenCaughtUp();
    expect(await eventCount('rw-6')).toBe(1);
  });
});
