import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { start as startEdge } from '#edge';
import { DeviceTokens } from '#runtime';
import {
  createTestContext,
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

  it('re-pushes an unacked message with growing attempts, then records DeliveryFailed once and keeps it pending', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'silent', 'w1', 'sub'));
    const main = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'silent', 'm1', 'main'));
    sub.send({ op: 'notify', req_id: 'x', table_id: 1, type: 'gift', data: {} });
    const attempts = [];
    for (let i = 0; i < 3; i++) attempts.push((await main.next((f) => f.op === 'message')).attempt);
    expect(attempts).toEqual([1, 2, 3]);
    const failed = await waitFor(
      async () => {
        const list = (await readLog(ctx, 'DeliveryFailed')).filter((e) => e.shop_id === 'silent');
        return list.length > 0 ? list : null;
      },
      { what: 'DeliveryFailed' },
    );
    expect(failed).toHaveLength(1);
    expect(failed?.[0]?.data).toMatchObject({ client_id: 'm1', attempts: 3 });
    expect(await ctx.redis.hlen(ctx.keys.inbox('silent'))).toBe(1);
    // The budget is spent: no fourth push until the next login, which gets it again.
    main.ws.close();
    const again = await loginRaw(url(edges[1]!), await registerDeviceAgainToken(ctx));
    const redelivered = await again.next((f) => f.op === 'message');
    expect(redelivered.attempt).toBe(4);
    again.send({ op: 'ack', id: redelivered.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('silent'))) === 0, {
      what: 'acked after login',
    });
    sub.ws.close();
    again.ws.close();
  });

  it('marks a late ack delivered once, however often it is repeated', async () => {
    const sub = await loginRaw(url(edges[0]!), await registerDevice(ctx, 'late', 'w1', 'sub'));
    const main = await loginRaw(url(edges[1]!), await registerDevice(ctx, 'late', 'm1', 'main'));
    sub.send({ op: 'notify', req_id: 'l1', table_id: 2, type: 'discount', data: {} });
    await main.next((f) => f.op === 'message' && f.attempt === 2);
    const message = main.frames.find((f) => f.op === 'message')!;
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

/** A fresh token for the 'silent' shop's main, of its standing registration. */
async function registerDeviceAgainToken(ctx: TestContext): Promise<string> {
  const registered = JSON.parse((await ctx.redis.hget(ctx.keys.devices('silent'), 'm1'))!) as {
    token_id: string;
  };
  return new DeviceTokens(ctx.config.tokens.secret, ctx.config.tokens.ttlS).mint({
    shop_id: 'silent',
    client_id: 'm1',
    type: 'main',
    token_id: registered.token_id,
  });
}
