import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloseInfo, DeviceClient } from '#client';
import { start as startEdge } from '#edge';
import { createTestContext, openRaw, type TestContext } from '#test-support';
import { type Api, startTestApi } from './harness';

/** Rejects after ms: the bound of the guarantee under test, not a wait for something to happen. */
function delayedFailure(ms: number): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms).unref();
  });
}

describe('when the back office revokes a connected device', () => {
  let ctx: TestContext;
  let api: Api;
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let client: DeviceClient | undefined;

  beforeAll(async () => {
    ctx = await createTestContext();
    api = await startTestApi(ctx);
    edge = await startEdge(ctx.config, { log: ctx.log });
  });
  afterAll(async () => {
    await client?.close();
    await api?.handle.stop();
    await edge?.stop();
    await ctx?.cleanup();
  });

  it("closes the device's socket with 4403 within a second, and the device stays out", async () => {
    const registered = await api.request('POST', '/v1/shops/shop-1/devices', {
      body: { client_id: 'pos-1', type: 'main' },
    });
    client = new DeviceClient({
      url: `ws://127.0.0.1:${edge.port}/ws`,
      token: registered.body.token as string,
    });
    await client.connect();
    const failures: Error[] = [];
    client.on('error', (err) => failures.push(err)); // the final close is also reported as an error
    const closed = new Promise<CloseInfo>((resolve) => client?.once('close', resolve));

    const deadline = delayedFailure(1000);
    expect((await api.request('DELETE', '/v1/shops/shop-1/devices/pos-1')).status).toBe(204);
    const info = await Promise.race([closed, deadline]);
    expect(info).toMatchObject({ code: 4403, willReconnect: false });
    expect(failures.map((err) => err.message)).toEqual([expect.stringContaining('4403')]);
    const online = await api.request('GET', '/v1/shops/shop-1/main-online');
    expect(online.body).toEqual({ online: false, devices: [] });

    const again = await openRaw(`ws://127.0.0.1:${edge.port}/ws`);
    again.send({ op: 'login', token: registered.body.token });
    expect((await again.closed).code).toBe(4403);
  });
});
