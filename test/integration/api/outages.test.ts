import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '#runtime';
import {
  type Api,
  createTestContext,
  registerDevice,
  startTestApi,
  type TestContext,
  waitFor,
} from '#test-support';
import { proxyInFrontOf, type TcpProxy } from '../../support/tcp-proxy';

describe('when Redis or PostgreSQL goes away', () => {
  let ctx: TestContext;
  let api: Api;
  let redisProxy: TcpProxy;
  let postgresProxy: TcpProxy;

  const readiness = async () => (await api.request('GET', '/readyz', { key: null })).body;

  beforeAll(async () => {
    ctx = await createTestContext();
    const redis = await proxyInFrontOf(ctx.env.REDIS_URL!);
    const postgres = await proxyInFrontOf(ctx.databaseUrl);
    redisProxy = redis.proxy;
    postgresProxy = postgres.proxy;
    const { config } = loadConfig({ ...ctx.env, REDIS_URL: redis.url, DATABASE_URL: postgres.url });
    api = await startTestApi({ ...ctx, config });
    await registerDevice(ctx, 'shop-1', 'waiter-1', 'sub');
    await registerDevice(ctx, 'shop-1', 'pos-1', 'main');
  });
  afterAll(async () => {
    await api?.handle.stop();
    await redisProxy?.close();
    await postgresProxy?.close();
    await ctx?.cleanup();
  });

  it('is ready while both answer', async () => {
    expect(await readiness()).toMatchObject({ ready: true, checks: { redis: 'ok', postgres: 'ok' } });
  });

  it('refuses writes with 503 LOG_UNAVAILABLE while Redis is down, and takes them again after', async () => {
    await redisProxy.cut();
    await waitFor(async () => (await readiness()).ready === false, { what: 'readyz to report redis down' });
    expect((await readiness()).checks).toMatchObject({ redis: expect.stringContaining('unreachable') });

    const write = await api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'add_dish', req_id: 'during-outage' },
    });
    expect(write.status).toBe(503);
    expect(write.body.error).toEqual({ code: 'LOG_UNAVAILABLE', message: expect.any(String) });
    expect((await api.request('GET', '/v1/shops/shop-1/main-online')).status).toBe(503);
    expect(
      (await api.request('POST', '/v1/shops/shop-1/devices', { body: { client_id: 'x', type: 'sub' } }))
        .status,
    ).toBe(503);

    await redisProxy.resume();
    await waitFor(async () => (await readiness()).ready === true, { what: 'readyz to recover' });
    const again = await api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'add_dish', req_id: 'during-outage' },
    });
    expect(again.status).toBe(202);
  });

  it('answers reads of the projections with 503 DATABASE_UNAVAILABLE while PostgreSQL is down', async () => {
    await postgresProxy.cut();
    const read = await api.request('GET', '/v1/shops/shop-1/messages');
    expect(read.status).toBe(503);
    expect(read.body.error?.code).toBe('DATABASE_UNAVAILABLE');
    expect(await readiness()).toMatchObject({
      ready: false,
      checks: { postgres: expect.stringContaining('unreachable') },
    });

    await postgresProxy.resume();
    await waitFor(async () => (await api.request('GET', '/v1/shops/shop-1/messages')).status === 200, {
      what: 'reads to work again',
    });
  });
});
