import { afterAll, describe, expect, it } from 'vitest';
import { type CloseInfo, DeviceClient } from '#client';
import { brokerInProcess, openRaw } from '#test-support';

/** Rejects after ms: the bound of the guarantee under test, not a wait for something to happen. */
function delayedFailure(ms: number): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms).unref();
  });
}

describe('when the back office revokes a connected device', () => {
  const broker = brokerInProcess({ api: true, edge: true });
  let client: DeviceClient | undefined;

  afterAll(async () => {
    await client?.close();
  });

  it("closes the device's socket with 4403 within a second, and the device stays out", async () => {
    const registered = await broker.api.request('POST', '/v1/shops/shop-1/devices', {
      body: { client_id: 'pos-1', type: 'main' },
    });
    client = new DeviceClient({
      url: broker.wsUrl,
      token: registered.body.token as string,
    });
    await client.connect();
    const failures: Error[] = [];
    client.on('error', (err) => failures.push(err)); // the final close is also reported as an error
    const closed = new Promise<CloseInfo>((resolve) => client?.once('close', resolve));

    const deadline = delayedFailure(1000);
    expect((await broker.api.request('DELETE', '/v1/shops/shop-1/devices/pos-1')).status).toBe(204);
    const info = await Promise.race([closed, deadline]);
    expect(info).toMatchObject({ code: 4403, willReconnect: false });
    expect(failures.map((err) => err.message)).toEqual([expect.stringContaining('4403')]);
    const online = await broker.api.request('GET', '/v1/shops/shop-1/main-online');
    expect(online.body).toEqual({ online: false, devices: [] });

    const again = await openRaw(broker.wsUrl);
    again.send({ op: 'login', token: registered.body.token });
    expect((await again.closed).code).toBe(4403);
  });
});
