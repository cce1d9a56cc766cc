// SPEC §5.3 with §10, end to end: cashier b, on one edge, acks its copy; cashier a, on another edge, handles the
// request a moment later, and the handle reaches Redis first (b's edge gathers acks for EDGE_ACK_LINGER_MS, made
// long here so that the order is certain). b received the message, so its copy must read delivered as well as
// handled, and b must still learn of the handle. Before ack-4.lua knew of copies a handle had taken out of the
// inbox, b's ack found nothing and the copy was never marked delivered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startEdge } from '#edge';
import { noticeIdOf, type rest } from '#events';
import { start as startPersister } from '#persister';
import {
  createTestContext,
  loginRaw,
  readLog,
  registerDevice,
  type TestContext,
  waitFor,
} from '#test-support';
import { type Api, startTestApi } from '../integration/api/harness';

/** b's edge holds an ack this long before it goes to Redis: far longer than a handle takes. */
const SLOW_ACKS_MS = 2000;

describe('an ack on one edge overtaken by a handle on another', () => {
  let ctx: TestContext;
  let edgeA: Awaited<ReturnType<typeof startEdge>>;
  let edgeB: Awaited<ReturnType<typeof startEdge>>;
  let persister: Awaited<ReturnType<typeof startPersister>>;
  let api: Api;

  beforeAll(async () => {
    ctx = await createTestContext({ DELIVERY_ACK_TIMEOUT_MS: '60000' });
    persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
    edgeA = await startEdge({ ...ctx.config, edge: { ...ctx.config.edge, id: 'edge-a' } }, { log: ctx.log });
    edgeB = await startEdge(
      { ...ctx.config, edge: { ...ctx.config.edge, id: 'edge-b', ackLingerMs: SLOW_ACKS_MS } },
      { log: ctx.log },
    );
    api = await startTestApi(ctx);
  });
  afterAll(async () => {
    await api?.handle.stop();
    await edgeA?.stop();
    await edgeB?.stop();
    await persister?.stop();
    await ctx?.cleanup();
  });

  it('records the delivery of the acked copy once, and still tells its cashier of the handle', async () => {
    const shopId = 'ack-then-handle';
    const tokens = {
      a: await registerDevice(ctx, shopId, 'cashier-a', 'main'),
      b: await registerDevice(ctx, shopId, 'cashier-b', 'main'),
      waiter: await registerDevice(ctx, shopId, 'waiter', 'sub'),
    };
    const onA = `ws://127.0.0.1:${edgeA.port}/ws`;
    const [a, b, waiter] = await Promise.all([
      loginRaw(onA, tokens.a),
      loginRaw(`ws://127.0.0.1:${edgeB.port}/ws`, tokens.b),
      loginRaw(onA, tokens.waiter),
    ]);
    waiter.send({ op: 'notify', req_id: 'r1', table_id: 3, type: 'discount', data: { pct: 10 } });
    const reply = await waiter.next((f) => f.op === 'notify');
    expect(reply.code).toBe(0);
    const request = (reply.data as { event_id: string }).event_id;
    const [ma, mb] = await Promise.all([
      a.next((f) => f.op === 'message'),
      b.next((f) => f.op === 'message'),
    ]);

    b.send({ op: 'ack', id: mb.id }); // held by edge-b for SLOW_ACKS_MS
    a.send({ op: 'handle', id: ma.id, status: 1, req_id: 'h1' });
    expect(await a.next((f) => f.op === 'handle')).toMatchObject({ code: 0 });
    const deliveriesOfB = async () =>
      (await readLog(ctx, 'MessageDelivered')).filter(
        (e) => e.type === 'MessageDelivered' && e.shop_id === shopId && e.data.ids.includes(String(mb.id)),
      );
    // The handle went first (b's ack is still held), and b's copy, written and not yet delivered, became a notice.
    expect(await deliveriesOfB()).toEqual([]);
    const [handled] = (await readLog(ctx, 'MessageHandled')).filter((e) => e.shop_id === shopId);
    expect(handled?.data).toMatchObject({ notices: [mb.id] });
    expect(await b.next((f) => f.op === 'handled')).toMatchObject({
      id: mb.id,
      event_id: request,
      status: 1,
    });

    await waitFor(async () => (await deliveriesOfB()).length > 0, { what: "b's late ack recorded" });
    expect(await deliveriesOfB()).toHaveLength(1);
    b.send({ op: 'ack', handled: [mb.id] });
    await waitFor(async () => !(await ctx.redis.hexists(ctx.keys.inbox(shopId), noticeIdOf(String(mb.id)))), {
      what: 'the notice acked',
    });
    // The push counts went with it: the notice's and the one b's copy kept for its late ack.
    expect(await ctx.redis.hlen(ctx.keys.attempts(shopId))).toBe(0);

    const copy = await waitFor(
      async () => {
        const answer = await api.request('GET', `/v1/shops/${shopId}/messages?state=all`);
        const found = (answer.body.items as rest.MessageView[]).find((m) => m.id === mb.id);
        return found?.state === 'handled' && found.delivered_at !== null ? found : undefined;
      },
      { what: "b's copy handled and delivered in PostgreSQL" },
    );
    expect(copy).toMatchObject({ status: 1, handled_by: { kind: 'device', client_id: 'cashier-a' } });
    for (const s of [a, b, waiter]) s.ws.close();
  }, 30_000);
});
