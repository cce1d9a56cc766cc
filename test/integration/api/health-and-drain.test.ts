import { describe, expect, it } from 'vitest';
import { start as startPersister } from '#persister';
import { brokerInProcess, registerDevice, requestApi, shopEvents, waitFor } from '#test-support';

describe('when a load balancer or Prometheus asks', () => {
  const broker = brokerInProcess({ api: true });

  it('answers /healthz and /readyz without a key, naming what readiness needs', async () => {
    expect(await broker.api.request('GET', '/healthz', { key: null })).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    const ready = await broker.api.request('GET', '/readyz', { key: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, checks: { redis: 'ok', postgres: 'ok' } });
  });

  it('counts requests by route pattern in /metrics', async () => {
    await broker.api.request('GET', '/v1/shops/shop-9/main-online');
    const metrics = await broker.api.request('GET', '/metrics', { key: null });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /broker_api_requests_total\{method="GET",route="\/v1\/shops\/:shopId\/main-online",status="200"\} \d+/,
    );
  });
});

describe('when the api drains', () => {
  const broker = brokerInProcess({ api: true, persister: true }, { API_HANDLE_WAIT_MS: '10000' });

  it('turns /readyz and new requests to 503, finishes the request in flight, then stops', async () => {
    await registerDevice(broker.ctx, 'shop-1', 'pos-1', 'main');
    await registerDevice(broker.ctx, 'shop-1', 'waiter-1', 'sub');
    const notify = await broker.api.request('POST', '/v1/shops/shop-1/notify', {
      body: { from_client_id: 'waiter-1', table_id: 1, type: 'checkout' },
    });
    await broker.persister.whenCaughtUp();
    await broker.persister.stop();

    // A handle that waits for its projection: in flight until the persister is back.
    const handling = broker.api.request('POST', `/v1/messages/${notify.body.event_id}.pos-1/handle`, {
      body: { status: 1 },
    });
    await waitFor(
      async () => (await shopEvents(broker.ctx, 'shop-1')).some((e) => e.type === 'MessageHandled'),
      {
        what: 'MessageHandled appended',
      },
    );
    let isDrained = false;
    const draining = broker.api.handle.drain().then(() => {
      isDrained = true;
    });

    expect((await broker.api.request('GET', '/readyz', { key: null })).body).toMatchObject({
      ready: false,
      checks: { service: 'draining' },
    });
    const refused = await broker.api.request('GET', '/v1/shops/shop-1/main-online');
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('DRAINING');
    expect((await broker.api.request('GET', '/healthz', { key: null })).status).toBe(200);
    expect(isDrained).toBe(false);

    broker.persister = await startPersister(broker.ctx.config, { log: broker.ctx.log });
    expect((await handling).status).toBe(200);
    await draining;

    const stopping = broker.api.handle.stop();
    expect(broker.api.handle.stop()).toBe(stopping);
    await stopping;
    await expect(requestApi(broker.api.url, 'GET', '/healthz')).rejects.toThrow();
  });
});
