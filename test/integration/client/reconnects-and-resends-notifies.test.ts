import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloseInfo, DeviceClient, LoginInfo } from '#client';
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

function nextLogin(): Promise<LoginInfo> {
  return new Promise((resolve) => device.once('login', resolve));
}

function nextClose(): Promise<CloseInfo> {
  return new Promise((resolve) => device.once('close', resolve));
}

describe('when the connection drops with a notify unanswered', () => {
  it('logs in again and sends the notify again with the same req_id and body', async () => {
    await device.connect();
    const first = await edge.nextPeer();
    const recorded = device.notify({
      req_id: 'r-1',
      table_id: 12,
      type: 'add_dish',
      status: 1,
      data: { dish: 'tea' },
    });
    const sent = await first.next('notify');
    const relogged = nextLogin();
    first.socket.terminate();
    expect(await relogged).toMatchObject({ conn_id: 'c1', reconnected: true });
    const second = await edge.nextPeer();
    const resent = await second.next('notify');
    expect(resent).toEqual(sent);
    expect(resent).toEqual({
      op: 'notify',
      req_id: 'r-1',
      table_id: 12,
      type: 'add_dish',
      status: 1,
      data: { dish: 'tea' },
    });
    second.reply('notify', 0, { req_id: 'r-1', data: { event_id: 'E1' } });
    await expect(recorded).resolves.toEqual({ event_id: 'E1', req_id: 'r-1' });
  });

  it('generates a req_id when none is given and keeps it across the reconnect', async () => {
    await device.connect();
    const first = await edge.nextPeer();
    const recorded = device.notify({ table_id: 'T1', type: 'checkout' });
    const sent = await first.next('notify');
    expect(sent.req_id).toMatch(/^[0-9a-f-]{36}$/);
    first.socket.terminate();
    const second = await edge.nextPeer();
    const resent = await second.next('notify');
    expect(resent.req_id).toBe(sent.req_id);
    second.reply('notify', 0, { req_id: sent.req_id, data: { event_id: 'E2' } });
    await expect(recorded).resolves.toEqual({ event_id: 'E2', req_id: sent.req_id });
  });

  it('holds a notify made while disconnected until the next login', async () => {
    await device.connect();
    const first = await edge.nextPeer();
    const closed = nextClose();
    first.socket.terminate();
    expect(await closed).toMatchObject({ code: 1006, willReconnect: true });
    const recorded = device.notify({ req_id: 'r-offline', table_id: 1, type: 'gift' });
    const second = await edge.nextPeer();
    expect((await second.next('notify')).req_id).toBe('r-offline');
    second.reply('notify', 0, { req_id: 'r-offline', data: { event_id: 'E3' } });
    await expect(recorded).resolves.toMatchObject({ event_id: 'E3' });
  });
});

describe('when the edge closes the socket', () => {
  it('reconnects after 1001 (draining)', async () => {
    await device.connect();
    const first = await edge.nextPeer();
    const closed = nextClose();
    const relogged = nextLogin();
    first.socket.close(1001, 'server draining, reconnect elsewhere');
    expect(await closed).toEqual({
      code: 1001,
      reason: 'server draining, reconnect elsewhere',
      willReconnect: true,
    });
    expect(await relogged).toMatchObject({ reconnected: true });
  });

  it('reconnects after 1011 and 1013', async () => {
    await device.connect();
    for (const code of [1011, 1013]) {
      const peer = await edge.nextPeer();
      const relogged = nextLogin();
      peer.socket.close(code, 'bye');
      await relogged;
    }
    expect(edge.peers).toHaveLength(3);
  });

  it('stops for good after 4409 (replaced), rejecting what was pending', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    const pending = device.notify({ req_id: 'r-x', table_id: 1, type: 'add_dish' });
    await peer.next('notify');
    const closed = nextClose();
    peer.socket.close(4409, 'replaced by a newer login of the same device');
    expect(await closed).toMatchObject({ code: 4409, willReconnect: false });
    await expect(pending).rejects.toMatchObject({ kind: 'CLOSED_FINAL', closeCode: 4409 });
    await expect(device.connect()).rejects.toMatchObject({ closeCode: 4409 });
    expect(device.isReady).toBe(false);
  });

  it('stops for good after 4403 (revoked while connected)', async () => {
    await device.connect();
    const peer = await edge.nextPeer();
    const waiting = device.next('message');
    peer.socket.close(4403, 'device revoked');
    await expect(waiting).rejects.toMatchObject({ kind: 'CLOSED_FINAL', closeCode: 4403 });
  });
});

describe('when reconnecting is off', () => {
  it('reports the close, keeps unanswered notifies, and sends them after connect() is called again', async () => {
    await device.close();
    device = clientFor(edge, { reconnect: false });
    await device.connect();
    const first = await edge.nextPeer();
    const recorded = device.notify({ req_id: 'r-manual', table_id: 1, type: 'add_dish' });
    await first.next('notify');
    const closed = nextClose();
    first.socket.terminate();
    expect(await closed).toMatchObject({ willReconnect: false });
    expect(device.pendingNotifies).toBe(1);
    await device.connect();
    const second = await edge.nextPeer();
    expect((await second.next('notify')).req_id).toBe('r-manual');
    second.reply('notify', 0, { req_id: 'r-manual', data: { event_id: 'E4' } });
    await expect(recorded).resolves.toMatchObject({ event_id: 'E4' });
  });
});
