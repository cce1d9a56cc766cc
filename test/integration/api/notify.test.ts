import { beforeAll, describe, expect, it } from 'vitest';
import type { EventOf } from '#events';
import { brokerInProcess, openRaw, registerDevice, shopEvents, type TestContext } from '#test-support';

const notifies = async (ctx: TestContext, shopId: string) =>
  (await shopEvents(ctx, shopId)).filter(
    (e): e is EventOf<'NotifyRequested'> => e.type === 'NotifyRequested',
  );

describe('when the back office notifies over HTTP', () => {
  const broker = brokerInProcess({ api: true });

  beforeAll(async () => {
    await registerDevice(broker.ctx, 'shop-1', 'pos-2', 'main');
    await registerDevice(broker.ctx, 'shop-1', 'pos-1', 'main');
    await registerDevice(broker.ctx, 'shop-1', 'waiter-1', 'sub');
  });

  it("records a sub's notify for every main device and answers 202 with the event id", async () => {
    const answer = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', req_id: 'r-1', table_id: '12A', type: 'add_dish' },
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ event_id: expect.any(String), req_id: 'r-1' });
    const event = (await notifies(broker.ctx, 'shop-1')).find((e) => e.id === answer.body.event_id);
    expect(event).toMatchObject({
      source: 'api',
      data: {
        req_id: 'r-1',
        from_client_id: 'waiter-1',
        from_type: 'sub',
        audience: 'mains',
        recipients: ['pos-1', 'pos-2'],
        table_id: '12A',
        type: 'add_dish',
        status: 0,
        data: {},
        user_info: {},
      },
    });
  });

  it('answers a repeated req_id with the first answer and records no second event', async () => {
    const body = { from_client_id: 'waiter-1', req_id: 'r-2', table_id: 3, type: 'checkout', status: 2 };
    const first = await broker.api.request('POST', '/v1/shops/shop-1/notify', { body });
    const again = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { ...body, status: 9 },
    });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect((await notifies(broker.ctx, 'shop-1')).filter((e) => e.data.req_id === 'r-2')).toHaveLength(1);
  });

  it('takes the Idempotency-Key header as the req_id', async () => {
    const request = () =>
      broker.api.request('POST', '/v1/shops/shop-1/notify', {
        body: { from_client_id: 'waiter-1', table_id: 3, type: 'gift' },
        headers: { 'idempotency-key': 'k-1' },
      });
    const first = await request();
    const again = await request();
    expect(first.body).toMatchObject({ req_id: 'k-1' });
    expect(again.body).toEqual(first.body);
    expect((await notifies(broker.ctx, 'shop-1')).filter((e) => e.data.req_id === 'k-1')).toHaveLength(1);
  });

  it('refuses a req_id and an Idempotency-Key that differ', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', req_id: 'a', table_id: 3, type: 'gift' },
      headers: { 'idempotency-key': 'b' },
    });
    expect(answer.status).toBe(400);
  });

  it('records every request without a req_id as a new event', async () => {
    const body = { from_client_id: 'waiter-1', table_id: 4, type: 'discount' };
    const first = await broker.api.request('POST', '/v1/shops/shop-1/notify', { body });
    const second = await broker.api.request('POST', '/v1/shops/shop-1/notify', { body });
    expect(first.body.event_id).not.toBe(second.body.event_id);
    expect(first.body.req_id).toBe(first.body.event_id);
  });

  it("records a main's notify as a broadcast to the subs", async () => {
    const answer = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'pos-1', table_id: 5, type: 'call_waiter', data: { seat: 2 } },
    });
    expect(answer.status).toBe(202);
    const event = (await notifies(broker.ctx, 'shop-1')).find((e) => e.id === answer.body.event_id);
    expect(event?.data).toMatchObject({
      from_type: 'main',
      audience: 'subs',
      recipients: [],
      data: { seat: 2 },
    });
  });

  it("records the back office's broadcast with no sender", async () => {
    const answer = await broker.api.request('POST', '/v1/shops/shop-1/broadcast', {
      body: { type: 'announcement', data: { text: 'closing soon' } },
      headers: { 'idempotency-key': 'b-1' },
    });
    expect(answer.status).toBe(202);
    const again = await broker.api.request('POST', '/v1/shops/shop-1/broadcast', {
      body: { type: 'announcement', data: { text: 'closing soon' } },
      headers: { 'idempotency-key': 'b-1' },
    });
    expect(again.body).toEqual(answer.body);
    const events = (await notifies(broker.ctx, 'shop-1')).filter((e) => e.data.req_id === 'b-1');
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({
      from_client_id: null,
      from_type: 'api',
      audience: 'subs',
      recipients: [],
      table_id: null,
    });
  });

  it('refuses a notify from a revoked device with 422', async () => {
    await registerDevice(broker.ctx, 'shop-1', 'waiter-gone', 'sub');
    expect((await broker.api.request('DELETE', '/v1/shops/shop-1/devices/waiter-gone')).status).toBe(204);
    const answer = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-gone', table_id: 1, type: 'add_dish' },
    });
    expect(answer.status).toBe(422);
  });

  it('refuses data nested too deep, or holding U+0000, with 400 and records nothing', async () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const before = (await notifies(broker.ctx, 'shop-1')).length;
    for (const data of [deep, { note: 'a\u0000b' }]) {
      const answer = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
        body: { from_client_id: 'waiter-1', table_id: 1, type: 'add_dish', data },
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error?.code).toBe('INVALID_INPUT');
    }
    expect((await notifies(broker.ctx, 'shop-1')).length).toBe(before);
  });
});

describe('when devices are online', () => {
  const broker = brokerInProcess({ api: true, edge: true, dispatcher: true });

  it('pushes an HTTP notify to the mains and a broadcast to the subs', async () => {
    const url = broker.wsUrl;
    const main = await openRaw(url);
    main.send({ op: 'login', token: await registerDevice(broker.ctx, 'shop-2', 'pos-1', 'main') });
    const sub = await openRaw(url);
    sub.send({ op: 'login', token: await registerDevice(broker.ctx, 'shop-2', 'waiter-1', 'sub') });
    expect(await main.next((f) => f.op === 'login')).toMatchObject({ code: 0 });
    expect(await sub.next((f) => f.op === 'login')).toMatchObject({ code: 0 });

    const notify = await broker.api.request('POST', '/v1/shops/shop-2/notify', {
      body: { from_client_id: 'waiter-1', table_id: 8, type: 'add_dish', data: { dish: 'tea' } },
    });
    const message = await main.next((f) => f.op === 'message');
    expect(message).toMatchObject({
      id: `${notify.body.event_id}.pos-1`,
      table_id: 8,
      data: { dish: 'tea' },
      from_client_id: 'waiter-1',
    });

    await broker.api.request('POST', '/v1/shops/shop-2/broadcast', {
      body: { type: 'announcement', data: { n: 1 } },
    });
    expect(await sub.next((f) => f.op === 'broadcast')).toMatchObject({
      type: 'announcement',
      data: { n: 1 },
    });
    main.ws.close();
    sub.ws.close();
  });
});
