import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PersisterHandle, start } from '#persister';
import { loadConfig } from '#runtime';
import { createTestContext, type TestContext, waitFor } from '#test-support';
import { busyShopOps, shopLog } from '../../support/shop-log';
import { proxyInFrontOf, type TcpProxy } from '../../support/tcp-proxy';
import { appendAll } from './harness';

let ctx: TestContext;
let proxy: TcpProxy;
let persister: PersisterHandle;

beforeAll(async () => {
  ctx = await createTestContext();
  const postgres = await proxyInFrontOf(ctx.databaseUrl);
  proxy = postgres.proxy;
  const { config } = loadConfig({ ...ctx.env, DATABASE_URL: postgres.url });
  persister = await start(config, { log: ctx.log });
});
afterAll(async () => {
  await persister.stop();
  await proxy.close();
  await ctx.cleanup();
});

async function get(path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${persister.port}${path}`);
  return { status: response.status, text: await response.text() };
}

function lagGauge(metrics: string, shard: number): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`broker_projection_lag_seconds{shard="${shard}"}`));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

describe('when the projections fall behind the log', () => {
  it('reports the oldest unprojected event in /readyz and the lag gauge, and clears both when caught up', async () => {
    expect(persister.port).toBeGreaterThan(0);
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);

    proxy.stall();
    const [first] = await appendAll(ctx.redis, ctx.keys, shopLog(busyShopOps(2), { shopId: 'shop-lag' }));
    const shard = first!.shard;
    const behind = await waitFor(
      async () => {
        const readyz = await get('/readyz');
        const body = JSON.parse(readyz.text);
        return readyz.status === 503 && body.detail.projection_lag_s > 0 ? body : null;
      },
      { what: '/readyz to report the lag' },
    );
    expect(behind.checks).toMatchObject({ redis: 'ok', postgres: expect.stringMatching(/^unreachable/) });
    expect(behind.detail.shards_behind[0]).toMatchObject({ shard });
    await waitFor(async () => lagGauge((await get('/metrics')).text, shard) > 0, {
      what: 'the lag gauge to rise',
    });

    proxy.resume();
    await persister.whenCaughtUp(20_000);
    await waitFor(async () => (await get('/readyz')).status === 200, { what: '/readyz to turn ready' });
    expect(JSON.parse((await get('/readyz')).text).detail).toEqual({
      projection_lag_s: 0,
      shards_behind: [],
    });
    await waitFor(async () => lagGauge((await get('/metrics')).text, shard) === 0, {
      what: 'the lag gauge to clear',
    });
  });
});
