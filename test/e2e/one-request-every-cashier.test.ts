// SPEC §10 end to end: two cashiers (mains) and a waiter (sub) on real sockets, with the edge, the dispatcher, the
// persister and the api running. The copies of one notify are one request: the first handle wins for every copy,
// the other cashier learns it (live, or after its message backlog at its next login) and acks the notice, a copy
// never written is not pushed any more, and bad handles change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { start as startEdge } from '#edge';
import { encodeEdgeCommand, noticeIdOf, type rest } from '#events';
import { start as startPersister } from '#persister';
import {
  createTestContext,
  loginRaw,
  type RawSocket,
  readLog,
  registerDevice,
  type TestContext,
  waitFor,
} from '#test-support';
import { type Api, startTestApi } from '../integration/api/harness';

describe('one request, every cashier', () => {
  let ctx: TestContext;
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
  let persister: Awaited<ReturnType<typeof startPersister>>;
  let api: Api;
  const url = () => `ws://127.0.0.1:${edge.port}/ws`;

  beforeAll(async () => {
    ctx = await createTestContext({ DELIVERY_ACK_TIMEOUT_MS: '60000' });
    persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
    dispatcher = await startDispatcher(ctx.config, { log: ctx.log, healthServer: false });
    edge = await startEdge(ctx.config, { log: ctx.log });
    api = await startTestApi(ctx);
  });
  afterAll(async () => {
    await api?.handle.stop();
    await edge?.stop();
    await dispatcher?.stop();
    await persister?.stop();
    await ctx?.cleanup();
  });

  /** A shop with cashiers a and b and a waiter, tokens minted. */
  async function shop(shopId: string) {
    return {
      a: await registerDevice(ctx, shopId, 'cashier-a', 'main'),
      b: await registerDevice(ctx, shopId, 'cashier-b', 'main'),
      waiter: await registerDevice(ctx, shopId, 'waiter', 'sub'),
    };
  }

  async function notify(waiter: RawSocket, reqId: string): Promise<string> {
    waiter.send({ op: 'notify', req_id: reqId, table_id: 12, type: 'return_dish', data: { dish: 'soup' } });
    const reply = await waiter.next((f) => f.op === 'notify' && f.req_id === reqId);
    expect(reply.code).toBe(0);
    return (reply.data as { event_id: string }).event_id;
  }

  async function handle(socket: RawSocket, id: string, status: number, reqId: string) {
    socket.send({ op: 'handle', id, status, req_id: reqId });
    return socket.next((f) => f.op === 'handle' && f.req_id === reqId);
  }

  const handledEvents = async (shopId: string) =>
    (await readLog(ctx, 'MessageHandled')).filter((e) => e.shop_id === shopId);

  async function messagesOf(shopId: string): Promise<rest.MessageView[]> {
    const answer = await api.request('GET', `/v1/shops/${shopId}/messages?state=all`);
    return answer.body.items as rest.MessageView[];
  }

  it('tells the other cashier live, refuses the second handle naming the first, and records one event', async () => {
    const tokens = await shop('s1');
    const [a, b, waiter] = await Promise.all([
      loginRaw(url(), tokens.a),
      loginRaw(url(), tokens.b),
      loginRaw(url(), tokens.waiter),
    ]);
    const request = await notify(waiter, 'r1');
    const [ma, mb] = await Promise.all([
      a.next((f) => f.op === 'message'),
      b.next((f) => f.op === 'message'),
    ]);
    a.send({ op: 'ack', id: ma.id });
    b.send({ op: 'ack', id: mb.id });

    const first = await handle(a, String(ma.id), 2, 'h1');
    expect(first).toMatchObject({ code: 0, data: { id: ma.id, event_id: request } });
    const notice = await b.next((f) => f.op === 'handled');
    expect(notice).toEqual({
      op: 'handled',
      id: mb.id,
      event_id: request,
      status: 2,
      handled_by: { kind: 'device', client_id: 'cashier-a' },
      handled_at: expect.any(String),
    });
    b.send({ op: 'ack', handled: [mb.id] });
    await waitFor(async () => !(await ctx.redis.hexists(ctx.keys.inbox('s1'), noticeIdOf(String(mb.id)))), {
      what: 'the notice acked',
    });

    const second = await handle(b, String(mb.id), 3, 'h2');
    expect(second).toMatchObject({
      code: 409,
      data: {
        handled_by: { kind: 'device', client_id: 'cashier-a' },
        handled_at: notice.handled_at,
        status: 2,
      },
    });
    const again = await handle(a, String(ma.id), 2, 'h3'); // a safe retry of the same handle
    expect(again).toMatchObject({ code: 0, data: { id: ma.id, event_id: request } });
    expect(await handledEvents('s1')).toHaveLength(1);

    await waitFor(async () => (await messagesOf('s1')).every((m) => m.state === 'handled'), {
      what: 'both copies handled in PostgreSQL',
    });
    for (const m of await messagesOf('s1')) {
      expect(m).toMatchObject({
        event_id: request,
        status: 2,
        handled_by: { kind: 'device', client_id: 'cashier-a' },
        handled_at: notice.handled_at,
        delivered_at: expect.any(String),
      });
    }
    // The REST handle of an already handled request names the first handler too.
    const rest409 = await api.request('POST', `/v1/messages/${mb.id}/handle`, { body: { status: 5 } });
    expect(rest409.status).toBe(409);
    expect(rest409.body.error).toMatchObject({
      code: 'ALREADY_HANDLED',
      data: { handled_by: { kind: 'device', client_id: 'cashier-a' } },
    });
    for (const s of [a, b, waiter]) s.ws.close();
  });

  it('gives an offline cashier its message backlog first, then the notice; a copy never written is not pushed', async () => {
    const tokens = await shop('s2');
    const [a, waiter] = await Promise.all([loginRaw(url(), tokens.a), loginRaw(url(), tokens.waiter)]);
    let b = await loginRaw(url(), tokens.b);
    const seen = await notify(waiter, 'seen');
    const mb = await b.next((f) => f.op === 'message');
    expect(mb.id).toBe(`${seen}.cashier-b`);
    b.ws.close(); // b has the message on screen, unacked, and goes offline
    await b.closed;
    await waitFor(async () => !(await ctx.redis.hexists(ctx.keys.presence('s2'), 'cashier-b')), {
      what: 'b offline',
    });
    const unseen = await notify(waiter, 'unseen'); // b never gets this one written
    const later = await notify(waiter, 'later');
    for (const request of [seen, unseen, later]) {
      const ma = await a.next((f) => f.op === 'message' && f.id === `${request}.cashier-a`);
      a.send({ op: 'ack', id: ma.id });
    }
    expect(await handle(a, `${seen}.cashier-a`, 1, 'h-seen')).toMatchObject({ code: 0 });
    expect(await handle(a, `${unseen}.cashier-a`, 1, 'h-unseen')).toMatchObject({ code: 0 });
    const [seenHandled, unseenHandled] = await handledEvents('s2');
    expect(seenHandled?.data).toMatchObject({ notices: [`${seen}.cashier-b`], dropped: [] });
    expect(unseenHandled?.data).toMatchObject({ notices: [], dropped: [`${unseen}.cashier-b`] });

    b = await loginRaw(url(), tokens.b);
    const backlog = [await b.next((f) => f.op !== 'pong'), await b.next((f) => f.op !== 'pong')];
    expect(backlog.map((f) => [f.op, f.id])).toEqual([
      ['message', `${later}.cashier-b`],
      ['handled', `${seen}.cashier-b`],
    ]);
    b.send({ op: 'ack', id: `${later}.cashier-b`, handled: [`${seen}.cashier-b`] });
    b.send({ op: 'ping', req_id: 'p' });
    await b.next((f) => f.op === 'pong');
    expect(b.frames.some((f) => f.id === `${unseen}.cashier-b`)).toBe(false);

    await waitFor(async () => (await messagesOf('s2')).filter((m) => m.state === 'handled').length === 4, {
      what: 'four handled copies',
    });
    const unseenCopy = (await messagesOf('s2')).find((m) => m.id === `${unseen}.cashier-b`);
    expect(unseenCopy).toMatchObject({ state: 'handled', delivered_at: null }); // handled without delivery
    for (const s of [a, b, waiter]) s.ws.close();
  });

  it('writes an unacked notice once per connection, and again on the next one', async () => {
    const tokens = await shop('s3');
    const [a, waiter] = await Promise.all([loginRaw(url(), tokens.a), loginRaw(url(), tokens.waiter)]);
    let b = await loginRaw(url(), tokens.b);
    const request = await notify(waiter, 'once');
    const mb = await b.next((f) => f.op === 'message');
    const ma = await a.next((f) => f.op === 'message');
    b.send({ op: 'ack', id: mb.id });
    expect(await handle(a, String(ma.id), 4, 'h')).toMatchObject({ code: 0 });
    const notice = await b.next((f) => f.op === 'handled' && f.id === mb.id);
    // Not acked. The same notice pushed again to this connection (as a retry would) is not written twice.
    const login = b.frames.find((f) => f.op === 'login');
    const connId = (login?.data as { conn_id: string } | undefined)?.conn_id ?? '';
    const skipped = async () => {
      const text = await (await fetch(`http://127.0.0.1:${edge.port}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('broker_edge_repeats_skipped_total '));
      return line ? Number(line.split(' ')[1]) : 0;
    };
    const skippedBefore = await skipped();
    await ctx.redis.spublish(
      ctx.keys.edgeChannelOfShop('s3', ctx.config.edge.id),
      encodeEdgeCommand({ kind: 'deliver', conn_id: connId, frames: [JSON.stringify(notice)] }),
    );
    await waitFor(async () => (await skipped()) > skippedBefore, { what: 'the repeat push skipped' });
    b.send({ op: 'ping', req_id: 'p1' });
    await b.next((f) => f.op === 'pong');
    expect(b.frames.filter((f) => f.op === 'handled')).toHaveLength(1);
    b.ws.close();
    await b.closed;
    b = await loginRaw(url(), tokens.b);
    expect(await b.next((f) => f.op === 'handled')).toMatchObject({
      id: mb.id,
      event_id: request,
      status: 4,
    });
    for (const s of [a, b, waiter]) s.ws.close();
  });

  it('refuses bad handles with a clear code and records nothing', async () => {
    const tokens = await shop('s4');
    const [a, b, waiter] = await Promise.all([
      loginRaw(url(), tokens.a),
      loginRaw(url(), tokens.b),
      loginRaw(url(), tokens.waiter),
    ]);
    const request = await notify(waiter, 'bad');
    await a.next((f) => f.op === 'message');
    expect(await handle(waiter, `${request}.cashier-a`, 1, 'sub')).toMatchObject({ code: 403 });
    expect(await handle(a, `${request}.cashier-b`, 1, 'other')).toMatchObject({ code: 403 });
    expect(await handle(a, `01HXA6Q8N4W7K2ZJ3M5P9R1T0V.cashier-a`, 1, 'unknown')).toMatchObject({
      code: 404,
    });
    a.send({ op: 'handle', id: `${request}.cashier-a`, req_id: 'no-status' });
    expect(await a.next((f) => f.req_id === 'no-status')).toMatchObject({ op: 'handle', code: 400 });
    // Another shop's message, named as one of this device's own: unknown here.
    const elsewhere = await shop('s4-other');
    const otherWaiter = await loginRaw(url(), elsewhere.waiter);
    const foreign = await notify(otherWaiter, 'foreign');
    expect(await handle(a, `${foreign}.cashier-a`, 1, 'foreign')).toMatchObject({ code: 404 });
    expect(await handledEvents('s4')).toHaveLength(0);
    expect(await handledEvents('s4-other')).toHaveLength(0);
    // The connection carries on.
    b.send({ op: 'ping', req_id: 'alive' });
    expect(await b.next((f) => f.op === 'pong')).toMatchObject({ code: 0 });
    for (const s of [a, b, waiter, otherWaiter]) s.ws.close();
  });
});
