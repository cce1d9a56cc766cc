import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startPersister } from '#persister';
import { createTestContext, registerDevice, type TestContext, waitFor } from '#test-support';
import { type Api, eventsOf, requestApi, startTestApi } from './harness';

describe('when a load balancer or Prometheus asks', () => {
  let ctx: TestContext;
  let api: Api;

  beforeAll(async () => {
    ctx = await createTestContext();
    api = await startTestApi(ctx);
  });
  afterAll(async () => {
    await api?.handle.stop();
    await ctx?.cleanup();
  });

  it('answers /healthz and /readyz without a key, naming what readiness needs', async () => {
    expect(await api.request('GET', '/healthz', { key: null })).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    const ready = await api.request('GET', '/readyz', { key: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, checks: { redis: 'ok', postgres: 'ok' } });
  });

  it('counts requests by route pattern in /metrics', async () => {
    await api.request('GET', '/v1/shops/shop-9/main-online');
    const metrics = await api.request('GET', '/metrics', { key: null });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /broker_api_requests_total\{method="GET",route="\/v1\/shops\/:shopId\/main-online",status="200"\} \d+/,
    );
  });
});

describe('when the api drains', () => {
  let ctx: TestContext;
  let api: Api;
  let persister: Awaited<ReturnType<typeof startPersister>>;

  beforeAll(async () => {
    ctx = await createTestContext({ API_HANDLE_WAIT_MS: '10000' });
    api = await startTestApi(ctx);
    persister = await startPersister(ctx.config, { log: ctx.log });
  });
  afterAll(async () => {
    await api?.handle.stop();
    await persister?.stop();
    await ctx?.cleanup();
  });

  it('turns /readyz and new requests to 503, finishes the request in flight, then stops', async () => {
    await registerDevice(ctx, 'shop-1', 'pos-1', 'main');
    await registerDevice(ctx, 'shop-1', 'waiter-1', 'sub');
    const notify = await api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'checkout' },
    });
    await persister.whenCaughtUp();
    await persister.stop();

    // A handle that waits for its projection: in flight until the persister is back.
    const handling = api.request('POST', `/v1/messages/${notify.body.event_id}.pos-1/handle`, {
      body: { status: 1 },
    });
    await waitFor(async () => (await eventsOf(ctx, 'shop-1')).some((e) => e.type === 'MessageHandled'), {
      what: 'MessageHandled appended',
    });
    let isDrained = false;
    const draining = api.handle.drain().then(() => {
      isDrained = true;
    });

    expect((await api.request('GET', '/readyz', { key: null })).body).toMatchObject({
      ready: false,
      checks: { service: 'draining' },
    });
    const refused = await api.request('GET', '/v1/shops/shop-1/main-online');
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('DRAINING');
    expect((await api.request('GET', '/healthz', { key: null })).status).toBe(200);
    expect(isDrained).toBe(false);

    persister = await startPersister(ctx.config, { log: ctx.log });
    expect((await handling).status).toBe(200);
    await draining;

    const stopping = api.handle.stop();
    expect(api.handle.stop()).toBe(stopping);
    await stopping;
    await expect(requestApi(api.url, 'GET', '/healthz')).rejects.toThrow();
  });
});
