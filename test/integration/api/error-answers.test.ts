import { describe, expect, it } from 'vitest';
import { type Answer, brokerInProcess, registerDevice } from '#test-support';

function expectError(answer: Answer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status, code });
  expect(typeof answer.body.error?.message).toBe('string');
  expect(Object.keys(answer.body)).toEqual(['error']);
}

describe('when a request is refused', () => {
  const broker = brokerInProcess({ api: true });

  it('answers malformed JSON with 400 MALFORMED_JSON', async () => {
    expectError(
      await broker.api.request('POST', '/v1/shops/s1/devices', { raw: '{"client_id":' }),
      400,
      'MALFORMED_JSON',
    );
    expectError(
      await broker.api.request('POST', '/v1/shops/s1/devices', { raw: '"a string"' }),
      400,
      'MALFORMED_JSON',
    );
  });

  it('answers a body that breaks its schema with 400 INVALID_INPUT naming the field', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/s1/devices', {
      body: { client_id: 'a b', type: 'main' },
    });
    expectError(answer, 400, 'INVALID_INPUT');
    expect(answer.body.error?.message).toContain('/client_id');
    expectError(
      await broker.api.request('POST', '/v1/shops/s1/devices', { body: { client_id: 'a', type: 'boss' } }),
      400,
      'INVALID_INPUT',
    );
    expectError(await broker.api.request('POST', '/v1/shops/s1/devices', { body: [] }), 400, 'INVALID_INPUT');
  });

  it('answers a write without a JSON body with 400', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/s1/devices', {
      raw: 'client_id=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectError(answer, 400, 'INVALID_INPUT');
  });

  it('answers a bad path parameter with 400', async () => {
    expectError(await broker.api.request('GET', `/v1/shops/${'x'.repeat(65)}/devices`), 400, 'INVALID_INPUT');
    expectError(await broker.api.request('GET', '/v1/shops/a%20b/devices'), 400, 'INVALID_INPUT');
    expectError(
      await broker.api.request('POST', '/v1/messages/not-a-message-id/handle', { body: { status: 1 } }),
      400,
      'INVALID_INPUT',
    );
  });

  it('answers a bad limit, state or cursor with 400', async () => {
    for (const query of [
      'limit=0',
      'limit=501',
      'limit=abc',
      'limit=1.5',
      'state=lost',
      'cursor=%%%',
      'cursor=bm9wZQ',
      'limit=1&limit=2',
    ]) {
      expectError(await broker.api.request('GET', `/v1/shops/s1/messages?${query}`), 400, 'INVALID_INPUT');
    }
    expectError(
      await broker.api.request('GET', '/v1/shops/s1/devices?cursor=WyJhIiwiYiJd'),
      400,
      'INVALID_INPUT',
    );
  });

  it('answers a body over the limit with 413', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/s1/notify', {
      body: { from_client_id: 'w', table_id: 1, type: 'add_dish', data: { blob: 'x'.repeat(70_000) } },
    });
    expectError(answer, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers an unknown route or method with 404', async () => {
    expectError(await broker.api.request('GET', '/nowhere'), 404, 'NOT_FOUND');
    expectError(await broker.api.request('PUT', '/v1/shops/s1/devices'), 404, 'NOT_FOUND');
  });

  it('answers the revocation of an unknown device with 404', async () => {
    expectError(await broker.api.request('DELETE', '/v1/shops/s1/devices/ghost'), 404, 'NOT_FOUND');
  });

  it('answers the registration of an active client_id with 409', async () => {
    await registerDevice(broker.ctx, 's1', 'pos-1', 'main');
    expectError(
      await broker.api.request('POST', '/v1/shops/s1/devices', { body: { client_id: 'pos-1', type: 'sub' } }),
      409,
      'CONFLICT',
    );
  });

  it('answers a notify from a device that is not registered with 422', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/s1/notify', {
      body: { from_client_id: 'stranger', table_id: 1, type: 'add_dish' },
    });
    expectError(answer, 422, 'UNPROCESSABLE');
    expect(answer.body.error?.message).toContain('stranger');
  });

  it('answers a sub notify in a shop without a main device with 404 NO_MAIN_DEVICE', async () => {
    await registerDevice(broker.ctx, 's2', 'waiter-1', 'sub');
    const answer = await broker.api.request('POST', '/v1/shops/s2/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'add_dish' },
    });
    expectError(answer, 404, 'NO_MAIN_DEVICE');
    expect(answer.body.error?.message).toBe('shop has no registered main device');
  });
});
