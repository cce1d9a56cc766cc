// ShardConsumer on a real Redis: consumers of one group split the shards and hand them over when one stops;
// each event is handled once; an event the handler keeps failing on is parked in the dead-letter stream and the
// events around it are still handled (SPEC §4: never silently dropped, never blocking the ones behind it).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ConsumedEntry, EventLog, listDeadLetters, ShardConsumer } from '#eventlog';
import { type BrokerEvent, createEvent } from '#events';
import { createTestContext, type TestContext, waitFor } from '#test-support';

interface Handled {
  consumer: string;
  shard: number;
  event: BrokerEvent;
}

describe('when consumers of one group read the log', () => {
  let ctx: TestContext;
  let log: EventLog;
  const consumers: ShardConsumer[] = [];
  let handled: Handled[];

  beforeEach(async () => {
    ctx = await createTestContext({ SHARDS: '4' });
    log = new EventLog(ctx.redis, ctx.keys);
    handled = [];
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
    await ctx?.cleanup();
  });

  function consumerNamed(
    name: string,
    handle: (shard: number, entries: ConsumedEntry[]) => Promise<void> = async (shard, entries) => {
      for (const { event } of entries) handled.push({ consumer: name, shard, event });
    },
  ): ShardConsumer {
    const consumer = new ShardConsumer({
      redis: ctx.redis,
      redisConfig: ctx.config.redis,
      keys: ctx.keys,
      log: ctx.log,
      group: 'test-group',
      consumer: name,
      batch: 50,
      leaseMs: ctx.config.consumer.leaseMs,
      handle,
    });
    consumers.push(consumer);
    return consumer;
  }

  /** One shop per shard at least, so every shard has traffic. */
  function shopsCoveringShards(): string[] {
    const shops: string[] = [];
    const covered = new Set<number>();
    for (let i = 0; covered.size < ctx.keys.shardCount || shops.length < 12; i++) {
      shops.push(`shop-${i}`);
      covered.add(ctx.keys.shardOf(`shop-${i}`));
    }
    return shops;
  }

  async function appendRevokes(shops: string[], perShop: number, tag: string): Promise<string[]> {
    const ids: string[] = [];
    for (let n = 0; n < perShop; n++) {
      for (const shop of shops) {
        const event = createEvent({
          type: 'DeviceRevoked',
          shopId: shop,
          source: 'api',
          data: { client_id: `${tag}-${n}` },
        });
        await log.append(event);
        ids.push(event.id);
      }
    }
    return ids;
  }

  const countsOf = (ids: string[]) => {
    const counts = new Map(ids.map((id) => [id, 0]));
    for (const { event } of handled)
      if (counts.has(event.id)) counts.set(event.id, counts.get(event.id)! + 1);
    return [...counts.values()];
  };

  it('splits the shards between two consumers and handles each event once, in log order per shop', async () => {
    const a = consumerNamed('a');
    const b = consumerNamed('b');
    await a.start();
    await b.start();
    await waitFor(() => a.shards().length === 2 && b.shards().length === 2, { what: 'a fair split' });
    expect([...a.shards(), ...b.shards()].sort()).toEqual(ctx.keys.allShards());

    const shops = shopsCoveringShards();
    const ids = await appendRevokes(shops, 10, 'first');
    await a.whenCaughtUp();
    expect(countsOf(ids)).toEqual(ids.map(() => 1));

    for (const { consumer, shard, event } of handled) {
      expect(ctx.keys.shardOf(event.shop_id)).toBe(shard);
      expect((consumer === 'a' ? a : b).shards()).toContain(shard);
    }
    for (const shop of shops) {
      const order = handled.filter(({ event }) => event.shop_id === shop).map(({ event }) => event.id);
      expect(order).toEqual(ids.filter((_, i) => shops[i % shops.length] === shop));
    }
  });

  it("hands a stopped consumer's shards to the one still running", async () => {
    const a = consumerNamed('a');
    const b = consumerNamed('b');
    await a.start();
    await b.start();
    await waitFor(() => a.shards().length === 2 && b.shards().length === 2, { what: 'a fair split' });
    const shops = shopsCoveringShards();
    const before = await appendRevokes(shops, 3, 'before');
    await a.whenCaughtUp();

    await b.stop();
    await waitFor(() => a.shards().length === ctx.keys.shardCount, { what: 'a to own every shard' });
    const after = await appendRevokes(shops, 3, 'after');
    await a.whenCaughtUp();

    expect(countsOf([...before, ...after])).toEqual([...before, ...after].map(() => 1));
    const afterIds = new Set(after);
    expect(
      handled.filter(({ event }) => afterIds.has(event.id)).every(({ consumer }) => consumer === 'a'),
    ).toBe(true);
  });

  it('parks an event the handler fails on three times in the dead-letter stream and handles the rest', async () => {
    const shop = 'shop-poison';
    const shard = ctx.keys.shardOf(shop);
    const events = ['ok-1', 'poison', 'ok-2', 'ok-3'].map((client_id) =>
      createEvent({ type: 'DeviceRevoked', shopId: shop, source: 'api', data: { client_id } }),
    );
    const streamIds: string[] = [];
    for (const event of events) streamIds.push(await log.append(event));
    const poison = events[1]!;

    let poisonCalls = 0;
    const consumer = consumerNamed('solo', async (s, entries) => {
      if (entries.some(({ event }) => event.id === poison.id)) {
        poisonCalls++;
        throw new Error('projection rejected the row'); // not transient: retrying later would not help
      }
      for (const { event } of entries) handled.push({ consumer: 'solo', shard: s, event });
    });
    await consumer.start();
    await consumer.whenCaughtUp();

    expect(handled.map(({ event }) => event.id)).toEqual([events[0]!.id, events[2]!.id, events[3]!.id]);
    expect(poisonCalls).toBeGreaterThanOrEqual(3);

    const dead = await ctx.redis.xrange(ctx.keys.deadLetter(shard), '-', '+');
    expect(dead).toHaveLength(1);
    const letters = await listDeadLetters(ctx.redis, ctx.keys);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      shard,
      group: 'test-group',
      stream_id: streamIds[1],
      reason: 'handler failed: projection rejected the row',
    });
    expect(letters[0]?.fields).toEqual({ t: 'DeviceRevoked', e: JSON.stringify(poison) });
  });

  it('parks an entry that fails validation with the reason and goes on with the next', async () => {
    const shop = 'shop-garbage';
    const shard = ctx.keys.shardOf(shop);
    const stream = ctx.keys.stream(shard);
    const garbageId = await ctx.redis.xadd(stream, '*', 't', 'NotifyRequested', 'e', '{not json');
    const good = createEvent({
      type: 'DeviceRevoked',
      shopId: shop,
      source: 'api',
      data: { client_id: 'c1' },
    });
    await log.append(good);

    const consumer = consumerNamed('solo');
    await consumer.start();
    await consumer.whenCaughtUp();

    expect(handled.map(({ event }) => event.id)).toEqual([good.id]);
    const letters = await listDeadLetters(ctx.redis, ctx.keys);
    expect(letters).toEqual([
      expect.objectContaining({ shard, stream_id: garbageId, reason: 'entry body is not JSON' }),
    ]);
  });

  it('with a list of types, handles only those and acknowledges the rest unread, dead-lettering nothing of them', async () => {
    const shop = 'shop-types';
    const stream = ctx.keys.stream(ctx.keys.shardOf(shop));
    const revoke = (client: string) =>
      createEvent({ type: 'DeviceRevoked', shopId: shop, source: 'api', data: { client_id: client } });
    const wanted = [revoke('c1'), revoke('c2')];
    await ctx.redis.xadd(stream, '*', 't', 'MessageHandled', 'e', '{unread, so never found invalid');
    await log.append(wanted[0]!);
    await log.append(
      createEvent({
        type: 'DeviceRegistered',
        shopId: shop,
        source: 'api',
        data: { client_id: 'c3', type: 'main', token_id: 't3' },
      }),
    );
    await log.append(wanted[1]!);
    const garbageId = await ctx.redis.xadd(stream, '*', 't', 'DeviceRevoked', 'e', '{wanted, so validated');

    const consumer = new ShardConsumer({
      redis: ctx.redis,
      redisConfig: ctx.config.redis,
      keys: ctx.keys,
      log: ctx.log,
      group: 'typed-group',
      consumer: 'typed',
      batch: 50,
      leaseMs: ctx.config.consumer.leaseMs,
      types: ['DeviceRevoked'],
      handle: async (shard, entries) => {
        for (const { event } of entries) handled.push({ consumer: 'typed', shard, event });
      },
    });
    consumers.push(consumer);
    await consumer.start();
    await consumer.whenCaughtUp();

    expect(handled.map(({ event }) => event.id)).toEqual(wanted.map((event) => event.id));
    expect(await listDeadLetters(ctx.redis, ctx.keys)).toEqual([
      expect.objectContaining({ stream_id: garbageId, reason: 'entry body is not JSON' }),
    ]);
    const pending = (await ctx.redis.xpending(stream, 'typed-group')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
  });
});

describe('when a consumer reads at most once per interval (readIntervalMs)', () => {
  let ctx: TestContext;
  let log: EventLog;
  let consumer: ShardConsumer | undefined;

  beforeEach(async () => {
    ctx = await createTestContext({ SHARDS: '1' });
    log = new EventLog(ctx.redis, ctx.keys);
  });
  afterEach(async () => {
    await consumer?.stop();
    await ctx?.cleanup();
  });

  function reading(batch: number, readIntervalMs: number, rounds: ConsumedEntry[][]): ShardConsumer {
    consumer = new ShardConsumer({
      redis: ctx.redis,
      redisConfig: ctx.config.redis,
      keys: ctx.keys,
      log: ctx.log,
      group: 'interval-group',
      consumer: 'c1',
      batch,
      leaseMs: ctx.config.consumer.leaseMs,
      readIntervalMs,
      handle: async (_shard, entries) => {
        rounds.push(entries);
      },
    });
    return consumer;
  }

  const revoke = (n: number) =>
    log.append(
      createEvent({ type: 'DeviceRevoked', shopId: 'shop-1', source: 'api', data: { client_id: `c-${n}` } }),
    );

  it('takes the events that arrive one by one within the interval in one round', async () => {
    const rounds: ConsumedEntry[][] = [];
    await reading(50, 2_500, rounds).start();
    await revoke(0);
    await waitFor(() => rounds.length === 1, { what: 'the first round' });
    // The next read waits for the rest of the interval: these five arrive while it waits.
    for (let n = 1; n <= 5; n++) await revoke(n);
    await waitFor(() => rounds.flat().length === 6, { what: 'all six handled' });
    expect(rounds.map((round) => round.length)).toEqual([1, 5]);
  });

  it('reads again at once after a round that filled a batch: a backlog is not slowed', async () => {
    const rounds: ConsumedEntry[][] = [];
    for (let n = 0; n < 9; n++) await revoke(n);
    // An interval far longer than the bound below: only full rounds being followed at once finish in time.
    await reading(4, 60_000, rounds).start();
    await waitFor(() => rounds.flat().length === 9, { what: 'the backlog handled', timeoutMs: 10_000 });
    expect(rounds.map((round) => round.length)).toEqual([4, 4, 1]);
  });
});

describe('when a consumer that holds every one of 16 shards stops', () => {
  let ctx: TestContext;

  beforeEach(async () => {
    ctx = await createTestContext({ SHARDS: '16' });
  });
  afterEach(async () => {
    await ctx?.cleanup();
  });

  it('closes its one reading connection once: no listener warning at shutdown', async () => {
    // Every shard is given back at once; each release used to stop the shared reader again, and the 11th
    // disconnect of its socket printed a MaxListenersExceededWarning on every persister's SIGTERM.
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const consumer = new ShardConsumer({
        redis: ctx.redis,
        redisConfig: ctx.config.redis,
        keys: ctx.keys,
        log: ctx.log,
        group: 'stop-group',
        consumer: 'only',
        batch: 50,
        leaseMs: ctx.config.consumer.leaseMs,
        handle: async () => {},
      });
      await consumer.start();
      await waitFor(() => consumer.shards().length === 16, { what: 'every shard leased' });
      const readers = async () =>
        String(await ctx.redis.client('LIST'))
          .split('\n')
          .filter((line) => line.includes('stop-group-reader'));
      await waitFor(async () => (await readers()).length === 1, { what: 'the one reading connection' });
      await consumer.stop();
      expect(consumer.shards()).toEqual([]);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
      await waitFor(async () => (await readers()).length === 0, { what: 'the reading connection closed' });
    } finally {
      process.off('warning', onWarning);
    }
  });
});
