import { describe, expect, it } from 'vitest';
import { compile, rest } from '#events';
import { DeviceTokens } from '#runtime';
import { brokerInProcess, openRaw } from '#test-support';

const isRegistered = compile(rest.RegisteredDevice);
const isDevicePage = compile(rest.listOf(rest.Device));

describe('when the back office manages devices', () => {
  const broker = brokerInProcess({ api: true, edge: true, persister: true });

  const register = (shopId: string, client_id: string, type: string) =>
    broker.api.request('POST', `/v1/shops/${shopId}/devices`, { body: { client_id, type } });
  async function list(shopId: string, query = ''): Promise<rest.DeviceView[]> {
    await broker.persister.whenCaughtUp();
    const answer = await broker.api.request('GET', `/v1/shops/${shopId}/devices${query}`);
    expect(answer.status).toBe(200);
    expect(isDevicePage.is(answer.body)).toBe(true);
    return answer.body.items as rest.DeviceView[];
  }

  it('registers a device and answers 201 with a token for it', async () => {
    const answer = await register('shop-1', 'pos-1', 'main');
    expect(answer.status).toBe(201);
    expect(isRegistered.is(answer.body)).toBe(true);
    expect(answer.body).toMatchObject({
      client_id: 'pos-1',
      type: 'main',
      online: false,
      revoked: false,
      legacy: false,
      last_seen_at: null,
    });
    const claims = await new DeviceTokens(broker.ctx.config.tokens.secret, 60).verify(
      answer.body.token as string,
    );
    expect(claims).toMatchObject({ shop_id: 'shop-1', client_id: 'pos-1', type: 'main' });
  });

  it('marks a device legacy when asked (SPEC §9), in its answer, its listing, the registry and the event', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/shop-legacy/devices', {
      body: { client_id: 'pos-old', type: '主', legacy: true },
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ client_id: 'pos-old', type: 'main', legacy: true });
    await register('shop-legacy', 'pos-new', 'main');
    expect((await list('shop-legacy')).map((d) => [d.client_id, d.legacy])).toEqual([
      ['pos-new', false],
      ['pos-old', true],
    ]);
    const entry = JSON.parse(
      (await broker.ctx.redis.hget(broker.ctx.keys.devices('shop-legacy'), 'pos-old'))!,
    );
    expect(entry).toMatchObject({ type: 'main', legacy: true });
    // A v1 token for the firmware upgrade keeps the device legacy until it is registered again without.
    const rotated = await broker.api.request('POST', '/v1/shops/shop-legacy/devices/pos-old/token');
    expect(rotated.body).toMatchObject({ client_id: 'pos-old', legacy: true, token: expect.any(String) });
    expect(
      JSON.parse((await broker.ctx.redis.hget(broker.ctx.keys.devices('shop-legacy'), 'pos-old'))!).legacy,
    ).toBe(true);
    expect(
      (
        await broker.api.request('POST', '/v1/shops/shop-legacy/devices', {
          body: { client_id: 'x', type: 'main', legacy: 'yes' },
        })
      ).status,
    ).toBe(400);
  });

  it('stores and returns the legacy types 主 and 副 as main and sub', async () => {
    expect((await register('shop-2', 'pos-1', '主')).body.type).toBe('main');
    expect((await register('shop-2', 'waiter-1', '副')).body.type).toBe('sub');
    expect((await list('shop-2')).map((d) => [d.client_id, d.type])).toEqual([
      ['pos-1', 'main'],
      ['waiter-1', 'sub'],
    ]);
  });

  it('shows which devices are online', async () => {
    const { body } = await register('shop-3', 'pos-1', 'main');
    await register('shop-3', 'waiter-1', 'sub');
    const socket = await openRaw(broker.wsUrl);
    socket.send({ op: 'login', token: body.token });
    expect(await socket.next((f) => f.op === 'login')).toMatchObject({ code: 0 });
    const devices = await list('shop-3');
    expect(devices.map((d) => [d.client_id, d.online])).toEqual([
      ['pos-1', true],
      ['waiter-1', false],
    ]);
    expect(devices[0]?.last_seen_at).toEqual(expect.any(String));
    socket.ws.close();
  });

  it('pages past the first page in client_id order', async () => {
    for (const id of ['d5', 'd3', 'd1', 'd4', 'd2']) await register('shop-4', id, 'sub');
    await broker.persister.whenCaughtUp();
    const first = await broker.api.request('GET', '/v1/shops/shop-4/devices?limit=2');
    const second = await broker.api.request(
      'GET',
      `/v1/shops/shop-4/devices?limit=2&cursor=${first.body.next_cursor}`,
    );
    const third = await broker.api.request(
      'GET',
      `/v1/shops/shop-4/devices?limit=2&cursor=${second.body.next_cursor}`,
    );
    const ids = (answer: typeof first) => (answer.body.items as rest.DeviceView[]).map((d) => d.client_id);
    expect([ids(first), ids(second), ids(third)]).toEqual([['d1', 'd2'], ['d3', 'd4'], ['d5']]);
    expect(third.body.next_cursor).toBeNull();
  });

  it('revokes a device (204), lists it as revoked, and registers it again with a new token', async () => {
    const before = await register('shop-5', 'pos-1', 'main');
    expect((await broker.api.request('DELETE', '/v1/shops/shop-5/devices/pos-1')).status).toBe(204);
    expect(await list('shop-5')).toEqual([
      expect.objectContaining({ client_id: 'pos-1', revoked: true, online: false }),
    ]);
    expect((await broker.api.request('DELETE', '/v1/shops/shop-5/devices/pos-1')).status).toBe(404);

    const after = await register('shop-5', 'pos-1', 'sub');
    expect(after.status).toBe(201);
    expect(after.body.token).not.toBe(before.body.token);
    expect(await list('shop-5')).toEqual([
      expect.objectContaining({ client_id: 'pos-1', type: 'sub', revoked: false }),
    ]);

    const stale = await openRaw(broker.wsUrl);
    stale.send({ op: 'login', token: before.body.token });
    expect((await stale.closed).code).toBe(4401);
  });
});
