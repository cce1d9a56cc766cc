// The edge's subscription to its channels (services/edge/src/subscription.ts) on a real Redis, or a Redis Cluster
// when the suite runs on one: it resolves once every channel is heard, hands on commands but keeps its probes to
// itself, and notices a channel it no longer hears although the client raised no event (as a Cluster drops the
// channels of a slot that moved to another master): it subscribes the channel again and reports the interruption,
// so that the edge pushes its connections' backlogs again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeliverySubscription, subscribeDeliveries } from '#edge';
import { closeRedis, duplicateRedis, type RedisClient } from '#runtime';
import { createTestContext, listenAsEdge, type TestContext, waitFor } from '#test-support';

describe("when an edge's channel goes quiet", () => {
  let ctx: TestContext;
  let subscriber: RedisClient;
  let subscription: DeliverySubscription | undefined;
  const commands: string[] = [];
  let resumed = 0;

  beforeAll(async () => {
    ctx = await createTestContext();
    subscriber = duplicateRedis(ctx.redis, ctx.log, ctx.config.redis, 'test-edge-sub', {
      shardedSubscriber: true,
    });
    subscription = await subscribeDeliveries(
      subscriber,
      ctx.redis,
      ctx.keys.edgeChannels('e-quiet'),
      { message: (text) => commands.push(text), resumed: () => resumed++, isDraining: () => false },
      ctx.log,
      { checkMs: 100, probeTimeoutMs: 1000, retryMs: 50 },
    );
  });
  afterAll(async () => {
    subscription?.stop();
    if (subscriber) await closeRedis(subscriber);
    await ctx?.cleanup();
  });

  it('hears every channel once subscribed, and hands on the commands but not its probes', async () => {
    const channels = ctx.keys.edgeChannels('e-quiet');
    for (const [i, channel] of channels.entries())
      expect(Number(await ctx.redis.spublish(channel, `deliver c-${i}\n{"op":"broadcast"}`))).toBe(1);
    await waitFor(() => commands.length === channels.length, { what: 'a command on every channel' });
    // Another listener on the same channels sees the probes go by: two rounds of them, none handed on.
    let probes = 0;
    const onlooker = await listenAsEdge(ctx, 'e-quiet', (_channel, text) => {
      if (text.startsWith('probe ')) probes++;
    });
    try {
      await waitFor(() => probes >= 2 * channels.length, { what: 'two rounds of probes' });
    } finally {
      onlooker.close();
    }
    expect(commands).toHaveLength(channels.length);
    expect(commands.every((text) => text.startsWith('deliver c-'))).toBe(true);
  });

  it('subscribes a channel it no longer hears again, and reports the interruption', async () => {
    const before = resumed;
    const channel = ctx.keys.edgeChannels('e-quiet')[3]!;
    // Behind the subscription's back: the client raises no event for it.
    await subscriber.sunsubscribe(channel);
    await waitFor(() => resumed > before, { what: 'the interruption reported' });
    expect(Number(await ctx.redis.spublish(channel, 'deliver c-back\n{"op":"broadcast"}'))).toBe(1);
    await waitFor(() => commands.includes('deliver c-back\n{"op":"broadcast"}'), {
      what: 'the command heard',
    });
  });
});
