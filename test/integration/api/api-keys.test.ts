import { describe, expect, it } from 'vitest';
import { brokerInProcess } from '#test-support';

describe('when a request reaches a /v1 route', () => {
  const broker = brokerInProcess({ api: true }, { API_KEYS: 'test-key,second-key' });

  it('refuses a missing key with 401 and a Bearer challenge', async () => {
    const answer = await broker.api.request('GET', '/v1/shops/s1/devices', { key: null });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(answer.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong API key' } });
  });

  it('refuses a wrong key, a key of another length and a key in another scheme', async () => {
    for (const headers of [
      { authorization: 'Bearer test-kez' },
      { authorization: 'Bearer test-key-and-more' },
      { authorization: 'Basic test-key' },
      { authorization: 'test-key' },
    ]) {
      const answer = await broker.api.request('GET', '/v1/shops/s1/devices', { key: null, headers });
      expect(answer.status, headers.authorization).toBe(401);
    }
  });

  it('refuses a keyless write before looking at its body', async () => {
    const answer = await broker.api.request('POST', '/v1/shops/s1/devices', { key: null, raw: '{not json' });
    expect(answer.status).toBe(401);
  });

  it('accepts every configured key', async () => {
    for (const key of ['test-key', 'second-key']) {
      const answer = await broker.api.request('GET', '/v1/shops/s1/main-online', { key });
      expect(answer.status, key).toBe(200);
    }
  });

  it('answers an unknown /v1 path with 401 without a key and 404 with one', async () => {
    expect((await broker.api.request('GET', '/v1/nothing-here', { key: null })).status).toBe(401);
    const answer = await broker.api.request('GET', '/v1/nothing-here');
    expect(answer.status).toBe(404);
    expect(answer.body.error?.code).toBe('NOT_FOUND');
  });

  it('serves the OpenAPI document without a key', async () => {
    const answer = await broker.api.request('GET', '/v1/openapi.json', { key: null });
    expect(answer.status).toBe(200);
    expect(answer.body.openapi).toBe('3.1.0');
  });
});
