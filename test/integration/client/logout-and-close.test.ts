import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloseInfo, DeviceClient } from '#client';
import { clientFor, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge;
let device: DeviceClient;

beforeEach(async () => {
  edge = await ScriptedEdge.start();
  device = clientFor(edge);
});

afterEach(async () => {
  await device.close();
  await edge.stop();
});

describe('when the device logs out', () => {
  it('sends logout, waits for the edge to close with 1000, and does not reconnect', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    const closes: CloseInfo[] = [];
    device.on('close', (info) => closes.push(info));
    const loggedOut = device.logout();
    expect(await peer.next('logout')).toEqual({ op: 'logout' });
    peer.socket.close(1000, 'logout');
    await loggedOut;
    expect(closes).toEqual([{ code: 1000, reason: 'logout', willReconnect: false }]);
    expect(device.isReady).toBe(false);
    await expect(device.connect()).rejects.toMatchObject({ kind: 'CLIENT_CLOSED' });
    expect(edge.peers).toHaveLength(1);
  });

  it('sends pending acks before the logout', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    peer.pushMessage('E1.pos1');
    await device.next('message');
    void device.logout();
    expect(peer.frames.map((frame) => frame.op)).toEqual([]);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    await peer.next('logout');
    peer.socket.close(1000, 'logout');
  });
});

describe('when the client is closed', () => {
  it('returns the same promise every time and closes the socket with 1000', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    const first = device.close();
    expect(device.close()).toBe(first);
    await first;
    expect((await peer.closed).code).toBe(1000);
  });

  it('rejects pending notifies and waiting next() calls', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    const pending = device
      .notify({ req_id: 'r1', table_id: 1, type: 'add_dish' })
      .catch((err: unknown) => err);
    await peer.next('notify');
    const waiting = device.next('message').catch((err: unknown) => err);
    await device.close();
    expect(await pending).toMatchObject({ kind: 'CLIENT_CLOSED' });
    expect(await waiting).toMatchObject({ kind: 'CLIENT_CLOSED' });
    await expect(device.notify({ table_id: 1, type: 'add_dish' })).rejects.toMatchObject({
      kind: 'CLIENT_CLOSED',
    });
  });

  it('stops a reconnect that is waiting out its backoff', async () => {
    await device.close();
    device = clientFor(edge, { backoff: { baseMs: 60_000, maxMs: 60_000 }, random: () => 0.99 });
    await device.connect();
    const peer = await edge.nextPeer();
    const reconnecting = new Promise((resolve) => device.once('reconnect', resolve));
    peer.socket.terminate();
    expect(await reconnecting).toMatchObject({ attempt: 1 });
    await device.close();
    expect(edge.peers).toHaveLength(1);
  });

  it('closes a client that never connected', async () => {
    await expect(device.close()).resolves.toBeUndefined();
  });

  it('closes while the socket is still opening', async () => {
    edge.loginAnswer = () => 'silent';
    const connecting = device.connect();
    const closed = device.close();
    await expect(connecting).rejects.toMatchObject({ kind: 'CLIENT_CLOSED' });
    await closed;
  });
});
