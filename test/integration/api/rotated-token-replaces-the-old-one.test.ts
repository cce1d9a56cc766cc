// SPEC §6: POST /v1/shops/:shopId/devices/:clientId/token gives a registered device a new token in one event
// (DeviceTokenRotated): the old token's socket is closed with 4403, the old token is refused at login (401, close
// 4401), and the new token logs in to the messages that were pending before the rotation.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  brokerInProcess,
  loginRaw,
  openRaw,
  registerDevice,
  shopEvents,
  tokenIdOf,
  waitFor,
  within,
} from '#test-support';

const SHOP = 'shop-rot';

describe("when the back office rotates a connected device's token", () => {
  const broker = brokerInProcess({ api: true, edge: true });

  beforeAll(async () => {
    await registerDevice(broker.ctx, SHOP, 'waiter-1', 'sub');
  });

  it('answers 201 with a new token, closes the old socket with 4403 and keeps the pending messages', async () => {
    const registered = await broker.api.request('POST', `/v1/shops/${SHOP}/devices`, {
      body: { client_id: 'pos-1', type: 'main' },
    });
    const oldToken = registered.body.token as string;
    const oldSocket = await loginRaw(broker.wsUrl, oldToken);
    const pending: string[] = [];
    for (const table of [1, 2]) {
      const notify = await broker.api.request('POST', `/v1/shops/${SHOP}/notify`, {
        body: { from_client_id: 'waiter-1', req_id: `r-${table}`, table_id: table, type: 'add_dish' },
      });
      expect(notify.status).toBe(202);
      pending.push(`${notify.body.event_id}.pos-1`);
    }
    const before = await shopEvents(broker.ctx, SHOP);

    const rotated = await broker.api.request('POST', `/v1/shops/${SHOP}/devices/pos-1/token`);
    expect(rotated.status).toBe(201);
    expect(rotated.body).toEqual({
      client_id: 'pos-1',
      type: 'main',
      online: false,
      revoked: false,
      legacy: false,
      registered_at: registered.body.registered_at,
      last_seen_at: null, // no persister runs here: the projection has not seen the device
      token: expect.any(String),
    });
    const newToken = rotated.body.token as string;
    expect(tokenIdOf(newToken)).not.toBe(tokenIdOf(oldToken));

    expect((await within(oldSocket.closed, { timeoutMs: 1000, what: 'old socket closed' })).code).toBe(4403);

    const again = await openRaw(broker.wsUrl);
    again.send({ op: 'login', token: oldToken });
    expect(await again.next((f) => f.op === 'login')).toMatchObject({ code: 401 });
    expect((await within(again.closed, { timeoutMs: 1000, what: 'old-token login closed' })).code).toBe(4401);

    const fresh = await loginRaw(broker.wsUrl, newToken);
    const first = await fresh.next((f) => f.op === 'message');
    const second = await fresh.next((f) => f.op === 'message');
    expect([first.id, second.id]).toEqual(pending);
    fresh.ws.close();

    // The rotation is one event; the edge records the old socket's close (4403) beside it.
    const after = (await shopEvents(broker.ctx, SHOP)).slice(before.length);
    const rotations = after.filter((e) => e.type === 'DeviceTokenRotated');
    expect(rotations).toEqual([
      expect.objectContaining({
        source: 'api',
        data: { client_id: 'pos-1', token_id: tokenIdOf(newToken) },
      }),
    ]);
    const closes = await waitFor(
      async () => {
        const found = (await shopEvents(broker.ctx, SHOP)).filter(
          (e) => e.type === 'ConnectionClosed' && e.data.close_code === 4403 && e.data.client_id === 'pos-1',
        );
        return found.length > 0 ? found : null;
      },
      { what: 'the old socket recorded closed with 4403' },
    );
    expect(closes).toHaveLength(1);
    expect(after.map((e) => e.type)).not.toContain('DeviceRegistered');
    expect(after.map((e) => e.type)).not.toContain('DeviceRevoked');
  });

  it('answers 404 for a device that was never registered, or was revoked', async () => {
    const unknown = await broker.api.request('POST', `/v1/shops/${SHOP}/devices/nobody/token`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('NOT_FOUND');

    await broker.api.request('POST', `/v1/shops/${SHOP}/devices`, {
      body: { client_id: 'gone', type: 'sub' },
    });
    expect((await broker.api.request('DELETE', `/v1/shops/${SHOP}/devices/gone`)).status).toBe(204);
    const before = await shopEvents(broker.ctx, SHOP);
    const revoked = await broker.api.request('POST', `/v1/shops/${SHOP}/devices/gone/token`);
    expect(revoked.status).toBe(404);
    expect(await shopEvents(broker.ctx, SHOP)).toHaveLength(before.length);
  });
});
