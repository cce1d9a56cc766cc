// SPEC §9.2: the original back office's four endpoints at API_LEGACY_PREFIX, with their paths, parameters (query,
// form or JSON) and answers `{code, msg, time, data}` (HTTP 200 for a handled request, 401 without a key). Each does
// what its /v1 twin does: the events they record are the same.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startApi } from '#api';
import { start as startDispatcher } from '#dispatcher';
import { start as startEdge } from '#edge';
import type { EventOf } from '#events';
import { start as startPersister } from '#persister';
import {
  type Answer,
  type Api,
  createTestContext,
  loginRaw,
  type RawSocket,
  registerDevice,
  requestApi,
  shopEvents,
  startTestApi,
  type TestContext,
} from '#test-support';

const PREFIX = '/api.php/index/index';
const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let ctx: TestContext;
let api: Api;
let edge: Awaited<ReturnType<typeof startEdge>>;
let persister: Awaited<ReturnType<typeof startPersister>>;
let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
let cashier: RawSocket;

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestApi(ctx);
  edge = await startEdge(ctx.config, { log: ctx.log });
  persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
  dispatcher = await startDispatcher(ctx.config, { log: ctx.log, healthServer: false });
  await registerDevice(ctx, 's1', 'pos-2', 'main', { legacy: true });
  await registerDevice(ctx, 's1', 'pad-1', 'sub', { legacy: true });
  cashier = await loginRaw(
    `ws://127.0.0.1:${edge.port}/ws`,
    await registerDevice(ctx, 's1', 'pos-1', 'main'),
  );
  await registerDevice(ctx, 'no-main', 'pad-9', 'sub');
});
afterAll(async () => {
  cashier?.ws.close();
  await api?.handle.stop();
  await edge?.stop();
  await persister?.stop();
  await dispatcher?.stop();
  await ctx?.cleanup();
});

/** The original's answer shape, with its code. */
function expectAnswer(answer: Answer, code: 0 | 1): Record<string, unknown> {
  expect(answer.status, answer.text).toBe(200);
  expect(Object.keys(answer.body)).toEqual(['code', 'msg', 'time', 'data']);
  expect(answer.body).toMatchObject({ code, msg: expect.any(String) });
  expect(answer.body.time).toMatch(TIME);
  return answer.body;
}

const notifies = async (shopId: string) =>
  (await shopEvents(ctx, shopId)).filter(
    (e): e is EventOf<'NotifyRequested'> => e.type === 'NotifyRequested',
  );
const list = async (shopId: string) => {
  await persister.whenCaughtUp();
  const body = expectAnswer(await api.request('GET', `${PREFIX}/messageList/shop_id/${shopId}`), 0);
  return body.data as Array<Record<string, unknown>>;
};

describe('when the original back office calls without an API key', () => {
  it('answers 401 in its shape, on every endpoint', async () => {
    for (const [method, path] of [
      ['GET', '/messageList/shop_id/s1'],
      ['GET', '/deal?id=x&status=1'],
      ['POST', '/deal'],
      ['GET', '/check_online_main/shop_id/s1'],
      ['POST', '/notify_main'],
    ] as const) {
      const answer = await api.request(method, `${PREFIX}${path}`, { key: null });
      expect(answer.status, path).toBe(401);
      expect(answer.body).toMatchObject({ code: 1, msg: 'missing or wrong API key', data: [] });
    }
  });
});

describe("when it notifies the mains on a sub's behalf (notify_main)", () => {
  it('takes a form, as the original did, and records the same NotifyRequested as /v1', async () => {
    const form = new URLSearchParams({
      shop_id: 's1',
      table_id: '12',
      type: 'add_dish',
      data: '{"dish":"noodles","qty":2}',
      'user_info[name]': 'Li',
      from_client_id: 'pad-1',
      from_client_type: '副',
      status: '1',
    });
    const body = expectAnswer(
      await api.request('POST', `${PREFIX}/notify_main`, { raw: form.toString(), headers: FORM }),
      0,
    );
    const eventId = (body.data as { event_id: string }).event_id;
    const event = (await notifies('s1')).find((e) => e.id === eventId);
    expect(event).toMatchObject({
      source: 'api',
      data: {
        from_client_id: 'pad-1',
        from_type: 'sub',
        audience: 'mains',
        recipients: ['pos-1', 'pos-2'],
        table_id: '12',
        type: 'add_dish',
        status: 1,
        data: { dish: 'noodles', qty: 2 },
        user_info: { name: 'Li' },
      },
    });
    // Pushed to the online cashier like any notify.
    expect(await cashier.next((f) => f.op === 'message')).toMatchObject({
      id: `${eventId}.pos-1`,
      table_id: '12',
    });
  });

  it('takes JSON as well, the ids as numbers or strings', async () => {
    const answer = await api.request('POST', `${PREFIX}/notify_main`, {
      body: {
        shop_id: 's1',
        table_id: 7,
        type: 'checkout',
        data: [],
        user_info: [],
        from_client_id: 'pad-1',
        status: 0,
      },
    });
    const eventId = (expectAnswer(answer, 0).data as { event_id: string }).event_id;
    expect((await notifies('s1')).find((e) => e.id === eventId)?.data).toMatchObject({
      table_id: 7,
      data: {},
    });
  });

  it('refuses with code 1 and HTTP 200: no main device, an unknown sender, fields it cannot take', async () => {
    const noMain = await api.request('POST', `${PREFIX}/notify_main`, {
      body: { shop_id: 'no-main', table_id: 1, type: 'add_dish', from_client_id: 'pad-9' },
    });
    expect(expectAnswer(noMain, 1).msg).toBe('店铺主设备未记录,请先联系商家完成主设备初始化');
    const stranger = await api.request('POST', `${PREFIX}/notify_main`, {
      body: { shop_id: 's1', table_id: 1, type: 'add_dish', from_client_id: 'nobody' },
    });
    expect(expectAnswer(stranger, 1).msg).toMatch(/not a registered device/);
    const bad = await api.request('POST', `${PREFIX}/notify_main`, {
      raw: 'shop_id=s1&type=add_dish&from_client_id=pad-1&data=not-json',
      headers: FORM,
    });
    expect(expectAnswer(bad, 1).msg).toMatch(/data/);
    const broken = await api.request('POST', `${PREFIX}/notify_main`, { raw: '{"shop_id":' });
    expect(expectAnswer(broken, 1).msg).toBe('malformed JSON');
    expect(await notifies('no-main')).toEqual([]);
  });
});

describe('when it lists a shop’s messages (messageList)', () => {
  it('lists those not handled yet, oldest first, in the rows of ws_message', async () => {
    const items = await list('s1');
    expect(items.map((m) => [m.to_client_id, m.table_id])).toEqual([
      ['pos-1', '12'],
      ['pos-2', '12'],
      ['pos-1', 7],
      ['pos-2', 7],
    ]);
    expect(Object.keys(items[0]!)).toEqual([
      'id',
      'shop_id',
      'table_id',
      'type',
      'data',
      'user_info',
      'from_client_id',
      'to_client_id',
      'from_client_type',
      'status',
      'is_delivered',
      'create_time',
    ]);
    expect(items[0]).toMatchObject({
      shop_id: 's1',
      type: 'add_dish',
      data: { dish: 'noodles', qty: 2 },
      user_info: { name: 'Li' },
      from_client_id: 'pad-1',
      from_client_type: '副',
      status: 1,
      is_delivered: 0,
    });
    expect(items[0]?.create_time).toMatch(TIME);
  });

  it('says which were delivered', async () => {
    const [first] = await list('s1');
    cashier.send({ op: 'ack', id: first?.id });
    await persister.whenCaughtUp();
    await expect.poll(async () => (await list('s1'))[0]?.is_delivered).toBe(1);
  });
});

describe('when it handles messages (deal)', () => {
  it('handles by query, form, JSON or the path, as POST /v1/messages/:id/handle does', async () => {
    // s1 has two mains: each notify is one request with two copies, and handling one copy handles both (SPEC §10).
    // Four requests, one copy each.
    while (new Set((await list('s1')).map((m) => String(m.id).slice(0, 26))).size < 4) {
      const sent = await api.request('POST', `${PREFIX}/notify_main`, {
        body: { shop_id: 's1', table_id: 2, type: 'gift', from_client_id: 'pad-1', data: {}, status: 0 },
      });
      expectAnswer(sent, 0);
    }
    const ids = (await list('s1')).map((m) => String(m.id));
    const [a, b, c, d] = ids.filter(
      (id, i) => ids.findIndex((x) => x.slice(0, 26) === id.slice(0, 26)) === i,
    );
    const answers = [
      await api.request('GET', `${PREFIX}/deal?id=${a}&status=2`),
      await api.request('POST', `${PREFIX}/deal`, { raw: `id=${b}&status=3`, headers: FORM }),
      await api.request('POST', `${PREFIX}/deal`, { body: { id: c, status: 4 } }),
      await api.request('GET', `${PREFIX}/deal/id/${d}/status/5`),
    ];
    for (const answer of answers) expectAnswer(answer, 0);
    expect(answers[0]?.body.data).toMatchObject({ id: a, status: 2, from_client_type: '副' });
    const handled = (await shopEvents(ctx, 's1')).filter((e) => e.type === 'MessageHandled');
    expect(handled.map((e) => [e.data, e.source])).toMatchObject([
      [{ id: a, status: 2, by: { kind: 'api' } }, 'api'],
      [{ id: b, status: 3, by: { kind: 'api' } }, 'api'],
      [{ id: c, status: 4, by: { kind: 'api' } }, 'api'],
      [{ id: d, status: 5, by: { kind: 'api' } }, 'api'],
    ]);
    expect(await list('s1')).toEqual([]);
    const rows = await api.request('GET', '/v1/shops/s1/messages?state=handled');
    const statuses = (rows.body.items as Array<{ status: number }>).map((m) => m.status).sort();
    expect([...new Set(statuses)]).toEqual([2, 3, 4, 5]); // every copy of each request carries its status
  });

  it('refuses with code 1: an unknown message, a missing or bad status', async () => {
    const unknown = await api.request('GET', `${PREFIX}/deal?id=01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1&status=1`);
    expect(expectAnswer(unknown, 1).msg).toMatch(/no message/);
    expectAnswer(await api.request('GET', `${PREFIX}/deal?id=01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1`), 1);
    expectAnswer(await api.request('POST', `${PREFIX}/deal`, { body: { id: 'x', status: 'high' } }), 1);
  });
});

describe('when the request was handled first by someone else (SPEC §10)', () => {
  it('answers deal with code 1, naming who handled it, and records nothing', async () => {
    const [first] = (await api.request('GET', '/v1/shops/s1/messages?state=handled')).body.items as Array<{
      id: string;
      status: number;
    }>;
    if (!first) throw new Error("the test above handles s1's messages");
    const before = (await shopEvents(ctx, 's1')).filter((e) => e.type === 'MessageHandled').length;
    const answer = await api.request('GET', `${PREFIX}/deal?id=${first.id}&status=${first.status + 1}`);
    expect(expectAnswer(answer, 1).data).toMatchObject({
      handled_by: { kind: 'api' },
      status: first.status,
      handled_at: expect.any(String),
    });
    expect((await shopEvents(ctx, 's1')).filter((e) => e.type === 'MessageHandled')).toHaveLength(before);
  });
});

describe('when it asks whether a main device is online (check_online_main)', () => {
  it('answers online 0|1 and the client ids of the mains connected', async () => {
    const online = await api.request('GET', `${PREFIX}/check_online_main/shop_id/s1`);
    expect(expectAnswer(online, 0).data).toEqual({ online: 1, client_ids: ['pos-1'] });
    const none = await api.request('GET', `${PREFIX}/check_online_main/shop_id/no-main`);
    expect(expectAnswer(none, 0).data).toEqual({ online: 0, client_ids: [] });
  });
});

describe('when API_LEGACY_PREFIX moves or turns the endpoints off', () => {
  it('serves them at the prefix given, and nowhere with `off`', async () => {
    for (const [prefix, path, status] of [
      ['/index.php', '/index.php/check_online_main/shop_id/s1', 200],
      [null, `${PREFIX}/check_online_main/shop_id/s1`, 404],
    ] as const) {
      const other = await startApi(
        { ...ctx.config, api: { ...ctx.config.api, port: 0, legacyPrefix: prefix } },
        { log: ctx.log },
      );
      try {
        const answer = await requestApi(`http://127.0.0.1:${other.port}`, 'GET', path);
        expect(answer.status, String(prefix)).toBe(status);
      } finally {
        await other.stop();
      }
    }
  });
});
