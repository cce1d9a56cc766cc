import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { start as startEdge } from '#edge';
import { encodeEdgeCommand, parseMessageId } from '#events';
import { DeviceTokens } from '#runtime';
import {
  createTestContext,
  entryFields,
  loginRaw,
  readLog,
  registerDevice,
  type TestContext,
  waitFor,
} from '#test-support';

type Edge = Awaited<ReturnType<typeof startEdge>>;

describe('the dispatcher', () => {
  let ctx: TestContext;
  let edges: Edge[];
  let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
  const url = (edge: Edge) => `ws://127.0.0.1:${edge.port}/ws`;

  beforeAll(async () => {
    ctx = await createTestContext({
      DELIVERY_RETRY_FIRST_MS: '100',
      DELIVERY_RETRY_MAX_MS: '400',
      DELIVERY_RETRY_ATTEMPTS: '3',
      DELIVERY_ACK_TIMEOUT_MS: '1500',
    });
    // Two edges of one broker: a shop's devices sit on different edges behind the load balancer.
    edges = [
      await startEdge({ ...ctx.config, edge: { ...ctx.config.edge, id: 'edge-a' } }, { log: ctx.log }),
      await startEdge({ ...ctx.config, edge: { ...ctx.config.edge, id: 'edge-b' } }, { log: ctx.log }),
    ];
    dispatcher = await startDispatcher(ctx.config, { log: ctx.log });
  });
  afterAll(async () => {
    for (const edge of edges ?? []) await edge.stop();
    await dispatcher?.stop();
    await ctx?.cleanup();
  });

  it('pushes to a recipient on each edge', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'two-edges', 'w1', 'sub'));
    const mainA = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'two-edges', 'm1', 'main'));
    const mainB = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'two-edges', 'm2', 'main'));
    sub.send({ op: 'notify', req_id: 'n1', table_id: 'T1', type: 'checkout', data: {} });
    const [a, b] = await Promise.all([
      mainA.next((f) => f.op === 'message'),
      mainB.next((f) => f.op === 'message'),
    ]);
    expect(a.id).toMatch(/\.m1$/);
    expect(b.id).toMatch(/\.m2$/);
    mainA.send({ op: 'ack', id: a.id });
    mainB.send({ op: 'ack', id: b.id });
    await waitFor(
      async () =>
        (await readLog(ctx, 'MessageDelivered')).filter((e) => e.shop_id === 'two-edges').length === 2,
    );
    // Both pushes were heard by their edges, so none was left to the dispatcher's retries: on a Redis Cluster too,
    // where a plain PUBLISH was counted by one node's subscribers only and every push was retried.
    const notifyId = parseMessageId(String(a.id))!.eventId;
    expect((await entryFields(ctx, 'two-edges', notifyId)).u).toBe('');
    for (const s of [sub, mainA, mainB]) s.ws.close();
  });

  it('gives an offline main its whole backlog, oldest first, right after login', async () => {
    const mainToken = await registerDevice(ctx, 'backlog', 'm1', 'main');
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'backlog', 'w1', 'sub'));
    for (let i = 0; i < 5; i++) {
      sub.send({ op: 'notify', req_id: `b${i}`, table_id: i, type: 'add_dish', data: { n: i } });
      expect(await sub.next((f) => f.op === 'notify' && f.req_id === `b${i}`)).toMatchObject({ code: 0 });
    }
    await dispatcher.whenCaughtUp();
    const main = await loginRaw(url(edges[1]!), mainToken);
    const received = [];
    for (let i = 0; i < 5; i++) received.push(await main.next((f) => f.op === 'message'));
    expect(received.map((m) => (m.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
    expect(received.every((m) => m.attempt === 1)).toBe(true);
    main.send({ op: 'ack', ids: received.map((m) => m.id) });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('backlog'))) === 0, {
      what: 'backlog acked',
    });
    sub.ws.close();
    main.ws.close();
  });

  it('writes an unacked message once on its connection, closes it with 4408 at the ack timeout, and pushes it again at the next login', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'silent', 'w1', 'sub'));
    const main = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'silent', 'm1', 'main'));
    const connId = String((main.frames.find((f) => f.op === 'login')!.data as { conn_id: string }).conn_id);
    sub.send({ op: 'notify', req_id: 'x', table_id: 1, type: 'gift', data: {} });
    const message = await main.next((f) => f.op === 'message');
    expect(message.attempt).toBe(1);
    // The same push once more, as a retry would send it: the connection already carries it.
    await ctx.redis.spublish(
      ctx.keys.edgeChannelOfShop('silent', 'edge-a'),
      encodeEdgeCommand({
        kind: 'deliver',
        conn_id: connId,
        frames: [JSON.stringify({ ...message, attempt: 2 })],
      }),
    );
    expect(await main.closed).toEqual({ code: 4408, reason: 'ack timeout' });
    expect(main.frames.filter((f) => f.op === 'message')).toHaveLength(1);
    const closes = await waitFor(async () => {
      const list = (await readLog(ctx, 'ConnectionClosed')).filter(
        (e) => e.type === 'ConnectionClosed' && e.data.conn_id === connId,
      );
      return list.length > 0 ? list : null;
    });
    expect(closes[0]!.data).toMatchObject({ reason: 'ack_timeout', close_code: 4408 });
    // A newer connection of the device gets it again, with the next attempt.
    const again = await loginRaw(url(edges[1]!), await tokenOf(ctx, 'silent', 'm1'));
    const redelivered = await again.next((f) => f.op === 'message');
    expect(redelivered.id).toBe(message.id);
    expect(redelivered.attempt).toBeGreaterThan(1);
    again.send({ op: 'ack', id: redelivered.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('silent'))) === 0, {
      what: 'acked after login',
    });
    sub.ws.close();
    again.ws.close();
  });

  it('retries through BullMQ a push that reached no edge, and the retry arrives', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'no-edge', 'w1', 'sub'));
    const main = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'no-edge', 'm1', 'main'));
    const listed = await movePresence(ctx, 'no-edge', 'm1', { edge_id: 'edge-gone', conn_id: 'c-gone' });
    sub.send({ op: 'notify', req_id: 'g1', table_id: 4, type: 'add_dish', data: {} });
    // The first push went to an edge nobody runs; the device is back where it really is before the retry.
    await firstPushCounted(ctx, 'no-edge');
    await ctx.redis.hset(ctx.keys.presence('no-edge'), 'm1', listed);
    const message = await main.next((f) => f.op === 'message');
    expect(message.attempt).toBe(2);
    main.send({ op: 'ack', id: message.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('no-edge'))) === 0, { what: 'acked' });
    expect(main.frames.filter((f) => f.op === 'message')).toHaveLength(1);
    sub.ws.close();
    main.ws.close();
  });

  it('records DeliveryFailed once when every retry reached no edge, keeps the message pending, and pushes it at the next login', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'lost-edge', 'w1', 'sub'));
    const main = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'lost-edge', 'm1', 'main'));
    await movePresence(ctx, 'lost-edge', 'm1', { edge_id: 'edge-gone', conn_id: 'c-gone' });
    sub.send({ op: 'notify', req_id: 'f1', table_id: 5, type: 'gift', data: {} });
    const failed = await waitFor(
      async () => {
        const list = (await readLog(ctx, 'DeliveryFailed')).filter((e) => e.shop_id === 'lost-edge');
        return list.length > 0 ? list : null;
      },
      { what: 'DeliveryFailed' },
    );
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ client_id: 'm1', attempts: 3 });
    expect(await ctx.redis.hlen(ctx.keys.inbox('lost-edge'))).toBe(1);
    expect(main.frames.filter((f) => f.op === 'message')).toHaveLength(0);
    // The budget is spent; the device's next login gets the message with its backlog.
    main.ws.close();
    const again = await loginRaw(url(edges[1]!), await tokenOf(ctx, 'lost-edge', 'm1'));
    const redelivered = await again.next((f) => f.op === 'message');
    expect(redelivered.attempt).toBe(4);
    again.send({ op: 'ack', id: redelivered.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('lost-edge'))) === 0, {
      what: 'acked after login',
    });
    sub.ws.close();
    again.ws.close();
  });

  it('retries a push the edge hands back because it no longer holds the connection', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'bounce', 'w1', 'sub'));
    const main = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'bounce', 'm1', 'main'));
    // Listed on edge-a, which runs but holds no such connection.
    const listed = await movePresence(ctx, 'bounce', 'm1', { edge_id: 'edge-a', conn_id: 'c-gone' });
    sub.send({ op: 'notify', req_id: 'h1', table_id: 6, type: 'discount', data: {} });
    await firstPushCounted(ctx, 'bounce');
    await ctx.redis.hset(ctx.keys.presence('bounce'), 'm1', listed);
    const message = await main.next((f) => f.op === 'message');
    expect(message.attempt).toBe(2);
    main.send({ op: 'ack', id: message.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('bounce'))) === 0, { what: 'acked' });
    sub.ws.close();
    main.ws.close();
  });

  it("pushes the backlog again when an edge's subscription to its deliveries was cut", async () => {
    const sub = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'cut-sub', 'w1', 'sub'));
    const main = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'cut-sub', 'm1', 'main'));
    // A message the live connection never got and no retry will bring: its pushes went to an edge nobody runs
    // until the budget was spent. Only the edge's own recovery can still bring it.
    const listed = await movePresence(ctx, 'cut-sub', 'm1', { edge_id: 'edge-gone', conn_id: 'c-gone' });
    sub.send({ op: 'notify', req_id: 'c1', table_id: 7, type: 'add_dish', data: {} });
    await waitFor(async () => (await readLog(ctx, 'DeliveryFailed')).some((e) => e.shop_id === 'cut-sub'), {
      what: 'DeliveryFailed',
    });
    await ctx.redis.hset(ctx.keys.presence('cut-sub'), 'm1', listed);
    expect(main.frames.filter((f) => f.op === 'message')).toHaveLength(0);

    // One subscriber connection; on a Redis Cluster one per master holding a channel (ioredis names them
    // `ioredis-cluster(ssubscriber):edge-edge-a-sub`), and the connections that read the slots.
    const killed = await killClients(ctx, 'edge-edge-a-sub');
    if (isCluster()) expect(killed).toBeGreaterThan(0);
    else expect(killed).toBe(1);
    const recovered = await main.next((f) => f.op === 'message', 10_000);
    expect(recovered.attempt).toBe(4);
    // And the subscription is back: the next notify arrives live.
    sub.send({ op: 'notify', req_id: 'c2', table_id: 8, type: 'add_dish', data: {} });
    const live = await main.next((f) => f.op === 'message', 10_000);
    expect(live.attempt).toBe(1);
    main.send({ op: 'ack', ids: [recovered.id, live.id] });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('cut-sub'))) === 0, { what: 'acked' });
    expect(main.frames.filter((f) => f.op === 'message')).toHaveLength(2);
    sub.ws.close();
    main.ws.close();
  });

  it('marks a repeated ack delivered once', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'late', 'w1', 'sub'));
    const main = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'late', 'm1', 'main'));
    sub.send({ op: 'notify', req_id: 'l1', table_id: 2, type: 'discount', data: {} });
    const message = await main.next((f) => f.op === 'message');
    for (let i = 0; i < 3; i++) main.send({ op: 'ack', id: message.id });
    main.send({ op: 'ping' });
    await main.next((f) => f.op === 'pong');
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('late'))) === 0);
    const delivered = (await readLog(ctx, 'MessageDelivered')).filter((e) => e.shop_id === 'late');
    expect(delivered).toHaveLength(1);
    sub.ws.close();
    main.ws.close();
  });

  it("broadcasts a main's notify to the shop's online subs", async () => {
    const main = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'bcast', 'm1', 'main'));
    const subs = [
      await loginRaw(url(edges[0]!), await registerDevice(ctx, 'bcast', 'w1', 'sub')),
      await loginRaw(url(edges[1]!), await registerDevice(ctx, 'bcast', 'w2', 'sub')),
    ];
    main.send({ op: 'notify', req_id: 'b1', table_id: 3, type: 'menu_changed', data: { soldout: ['fish'] } });
    expect(await main.next((f) => f.op === 'notify')).toMatchObject({ code: 0 });
    for (const sub of subs) {
      expect(await sub.next((f) => f.op === 'broadcast')).toMatchObject({
        type: 'menu_changed',
        from_client_id: 'm1',
        data: { soldout: ['fish'] },
      });
    }
    for (const s of [main, ...subs]) s.ws.close();
  });
});

/** A fresh token for a device's standing registration. */
async function tokenOf(ctx: TestContext, shop: string, client: string): Promise<string> {
  const registered = JSON.parse((await ctx.redis.hget(ctx.keys.devices(shop), client))!) as {
    token_id: string;
  };
  return new DeviceTokens(ctx.config.tokens.secret, ctx.config.tokens.ttlS).mint({
    shop_id: shop,
    client_id: client,
    type: 'main',
    token_id: registered.token_id,
  });
}

/** Points a device's presence elsewhere; returns the entry it had, to put back. */
async function movePresence(
  ctx: TestContext,
  shop: string,
  client: string,
  to: { edge_id: string; conn_id: string },
): Promise<string> {
  const listed = (await ctx.redis.hget(ctx.keys.presence(shop), client))!;
  await ctx.redis.hset(ctx.keys.presence(shop), client, JSON.stringify({ ...JSON.parse(listed), ...to }));
  return listed;
}

/** Waits until the shop's first push is counted: its route was read before, so the push went where it said. */
async function firstPushCounted(ctx: TestContext, shop: string): Promise<void> {
  await waitFor(async () => Object.values(await ctx.redis.hgetall(ctx.keys.attempts(shop))).includes('1'), {
    intervalMs: 2,
    what: 'first push',
  });
}

function isCluster(): boolean {
  return inject('redisClusterNodes') !== '';
}

/** Kills the Redis connections of that name on every node; returns how many. */
async function killClients(ctx: TestContext, name: string): Promise<number> {
  const nodes = ctx.redis instanceof Cluster ? ctx.redis.nodes('master') : [ctx.redis];
  let killed = 0;
  for (const node of nodes) {
    const list = String(await node.client('LIST'));
    for (const line of list.split('\n')) {
      if (!line.includes(` name=${name} `) && !line.includes(`:${name} `)) continue;
      const id = /\bid=(\d+)/.exec(line)?.[1];
      if (id) killed += Number(await node.client('KILL', 'ID', id));
    }
  }
  return killed;
}
