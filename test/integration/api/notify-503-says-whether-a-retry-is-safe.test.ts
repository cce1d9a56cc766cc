// SPEC §5.6: a REST notify that met a stalled Redis has an unknown outcome. Its 503 says to retry with the same
// req_id or Idempotency-Key, or, when the request carried neither, that a retry may record it twice. The api
// reaches Redis through a proxy that hangs in the middle of the notify script, then lets the held bytes through,
// so the refused notify is in fact recorded: what the 503 warns about really happens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventOf } from '#events';
import { loadConfig } from '#runtime';
import {
  type Api,
  createTestContext,
  registerDevice,
  shopEvents,
  startTestApi,
  type TestContext,
  waitFor,
} from '#test-support';
import { proxyInFrontOf, type TcpProxy } from '../../support/tcp-proxy';

const SHOP = 'stalled-shop';

describe('when Redis stalls in the middle of a REST notify', () => {
  let ctx: TestContext;
  let proxy: TcpProxy;
  let api: Api;

  beforeAll(async () => {
    ctx = await createTestContext();
    const redis = await proxyInFrontOf(ctx.env.REDIS_URL!);
    proxy = redis.proxy;
    const { config } = loadConfig({ ...ctx.env, REDIS_URL: redis.url });
    api = await startTestApi({ ...ctx, config });
    await registerDevice(ctx, SHOP, 'waiter-1', 'sub');
    await registerDevice(ctx, SHOP, 'pos-1', 'main');
    // One notify first, so that the script is loaded: a stalled EVALSHA is then applied as sent when it goes through.
    expect((await notify({ marker: 'warm-up', req_id: 'warm-up' })).status).toBe(202);
  });
  afterAll(async () => {
    proxy?.resume();
    await api?.handle.stop();
    await proxy?.close();
    await ctx?.cleanup();
  });

  function notify(options: { marker: string; req_id?: string; idempotencyKey?: string }) {
    const { marker, req_id, idempotencyKey } = options;
    return api.request('POST', `/v1/shops/${SHOP}/notify`, {
      body: { from_client_id: 'waiter-1', table_id: 7, type: 'add_dish', data: { marker }, req_id },
      headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey },
    });
  }

  /** The shop's notifies that carry `marker`, as recorded in its stream. */
  async function recorded(marker: string): Promise<Array<EventOf<'NotifyRequested'>>> {
    return (await shopEvents(ctx, SHOP)).filter(
      (e): e is EventOf<'NotifyRequested'> => e.type === 'NotifyRequested' && e.data.data.marker === marker,
    );
  }

  /** Sends a notify that Redis hangs on, then lets Redis apply it; resolves with the 503 it was answered. */
  async function stalledNotify(options: { marker: string; req_id?: string; idempotencyKey?: string }) {
    proxy.stallAt(options.marker);
    const refused = await notify(options);
    proxy.resume();
    await waitFor(async () => (await recorded(options.marker)).length === 1, {
      what: 'the stalled notify to be applied after all',
    });
    return refused;
  }

  it('says to retry with the same req_id, and the retry answers the event the 503 left unknown', async () => {
    const refused = await stalledNotify({ marker: 'with-req-id', req_id: 'r-stalled' });
    expect({ status: refused.status, body: refused.body }).toEqual({
      status: 503,
      body: {
        error: {
          code: 'LOG_UNAVAILABLE',
          message:
            'event log unavailable: the outcome is unknown; retry with the same req_id or Idempotency-Key, ' +
            'which records it once',
        },
      },
    });

    const retried = await notify({ marker: 'with-req-id', req_id: 'r-stalled' });
    const [event] = await recorded('with-req-id');
    expect({ status: retried.status, body: retried.body }).toEqual({
      status: 202,
      body: { event_id: event?.id, req_id: 'r-stalled' },
    });
    expect(await recorded('with-req-id')).toHaveLength(1);
  });

  it('says the same when the Idempotency-Key header carried the req_id', async () => {
    const refused = await stalledNotify({ marker: 'with-key', idempotencyKey: 'k-stalled' });
    expect(refused.status).toBe(503);
    expect(refused.body.error?.message).toContain('retry with the same req_id or Idempotency-Key');

    const retried = await notify({ marker: 'with-key', idempotencyKey: 'k-stalled' });
    expect(retried.status).toBe(202);
    expect(await recorded('with-key')).toHaveLength(1);
  });

  it('says that a request without req_id or Idempotency-Key is not safe to retry, which it is not', async () => {
    const refused = await stalledNotify({ marker: 'without-req-id' });
    expect({ status: refused.status, body: refused.body }).toEqual({
      status: 503,
      body: {
        error: {
          code: 'LOG_UNAVAILABLE',
          message:
            'event log unavailable: the outcome is unknown; this request carried no req_id or Idempotency-Key, ' +
            'so retrying it may record it twice',
        },
      },
    });

    expect((await notify({ marker: 'without-req-id' })).status).toBe(202);
    expect(await recorded('without-req-id')).toHaveLength(2);
  });

  it('keeps answering after each stall', async () => {
    expect((await api.request('GET', '/readyz', { key: null })).status).toBe(200);
    expect((await notify({ marker: 'after', req_id: 'r-after' })).status).toBe(202);
  });
});
