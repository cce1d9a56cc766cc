import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloseInfo, DeviceClient } from '#client';
import { clientFor, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge | undefined;
let device: DeviceClient | undefined;

afterEach(async () => {
  await device?.close();
  await edge?.stop();
});

describe('when the edge goes silent', () => {
  it('pings it, and drops and replaces the connection when no pong comes back', async () => {
    edge = await ScriptedEdge.start({ autoPong: false }); // a half-open connection: nothing ever comes back
    device = clientFor(edge, { idleTimeoutMs: 200 });
    await device.connect();
    const first = await edge.nextPeer();
    const closed = new Promise<CloseInfo>((resolve) => device?.once('close', resolve));
    await once(first.socket, 'ping');
    expect(await closed).toMatchObject({ code: 1006, willReconnect: true });
    const second = await edge.nextPeer();
    expect(second.index).toBe(1);
  });

  it('keeps a quiet connection that answers its pings', async () => {
    edge = await ScriptedEdge.start();
    device = clientFor(edge, { idleTimeoutMs: 200 });
    await device.connect();
    const peer = await edge.nextPeer();
    for (let i = 0; i < 3; i++) await once(peer.socket, 'ping');
    expect(device.isReady).toBe(true);
    expect(edge.peers).toHaveLength(1);
  });
});
