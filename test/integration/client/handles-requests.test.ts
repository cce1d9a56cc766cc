import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceClient, LoginInfo } from '#client';
import { ERRORS } from '#events';
import { clientFor, type Peer, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge;
let device: DeviceClient;
let peer: Peer;

beforeEach(async () => {
  edge = await ScriptedEdge.start();
  device = clientFor(edge);
  await device.connect();
  peer = await edge.nextPeer();
});

afterEach(async () => {
  await device.close();
  await edge.stop();
});

const FIRST = {
  handled_by: { kind: 'device', client_id: 'pos2' },
  handled_at: '2024-05-01T12:00:00.000Z',
  status: 1,
};

describe('when a main device handles a message', () => {
  it('sends handle with a generated req_id and resolves ok with the request on code 0', async () => {
    const handled = device.handle('E1.pos1', 2);
    const sent = await peer.next('handle');
    expect(sent).toEqual({ op: 'handle', id: 'E1.pos1', status: 2, req_id: expect.any(String) });
    expect(sent.req_id).toMatch(/^[0-9a-f-]{36}$/);
    peer.reply('handle', 0, { req_id: sent.req_id, data: { id: 'E1.pos1', event_id: 'E1' } });
    await expect(handled).resolves.toEqual({ ok: true, id: 'E1.pos1', event_id: 'E1' });
    expect(device.pendingHandles).toBe(0);
  });

  it('resolves with who handled it first when the edge answers 409', async () => {
    const handled = device.handle('E1.pos1', 2, { req_id: 'h-late' });
    await peer.next('handle');
    peer.reply('handle', 409, {
      req_id: 'h-late',
      msg: 'already handled by device pos2',
      data: FIRST,
    });
    await expect(handled).resolves.toEqual({ ok: false, ...FIRST });
  });

  it('rejects with the code and message of any other error reply', async () => {
    const forbidden = device.handle('E1.pos9', 2, { req_id: 'h-403' });
    await peer.next('handle');
    peer.reply('handle', 403, { req_id: 'h-403', msg: 'message E1.pos9 is addressed to another device' });
    await expect(forbidden).rejects.toMatchObject({
      kind: 'REFUSED',
      code: 403,
      msg: 'message E1.pos9 is addressed to another device',
      reqId: 'h-403',
    });
  });

  it('sends a handle answered 503 again, with the same req_id, until it is answered', async () => {
    const unavailable = device.handle('E2.pos1', 2, { req_id: 'h-503' });
    await peer.next('handle');
    peer.reply('handle', 503, { req_id: 'h-503', msg: ERRORS.LOG_UNAVAILABLE.message });
    const again = await peer.next('handle');
    expect(again).toMatchObject({ op: 'handle', id: 'E2.pos1', status: 2, req_id: 'h-503' });
    peer.reply('handle', 0, { req_id: 'h-503', data: { id: 'E2.pos1', event_id: 'E2' } });
    await expect(unavailable).resolves.toEqual({ ok: true, id: 'E2.pos1', event_id: 'E2' });
  });

  it('matches replies by req_id, whatever their order', async () => {
    const a = device.handle('E1.pos1', 2, { req_id: 'a' });
    const b = device.handle('E2.pos1', 3, { req_id: 'b' });
    await peer.next('handle');
    await peer.next('handle');
    peer.reply('handle', 0, { req_id: 'b', data: { id: 'E2.pos1', event_id: 'E2' } });
    peer.reply('handle', 409, { req_id: 'a', data: FIRST });
    await expect(b).resolves.toEqual({ ok: true, id: 'E2.pos1', event_id: 'E2' });
    await expect(a).resolves.toMatchObject({ ok: false, status: 1 });
  });
});

describe('when the connection drops before the reply', () => {
  it('logs in again and sends the same handle with the same req_id', async () => {
    const handled = device.handle('E1.pos1', 2);
    const sent = await peer.next('handle');
    const relogged = new Promise<LoginInfo>((resolve) => device.once('login', resolve));
    peer.socket.terminate();
    expect(await relogged).toMatchObject({ reconnected: true });
    const second = await edge.nextPeer();
    const resent = await second.next('handle');
    expect(resent).toEqual(sent);
    expect(device.pendingHandles).toBe(1);
    second.reply('handle', 0, { req_id: sent.req_id, data: { id: 'E1.pos1', event_id: 'E1' } });
    await expect(handled).resolves.toEqual({ ok: true, id: 'E1.pos1', event_id: 'E1' });
  });

  it('holds a handle made while disconnected until the next login', async () => {
    const closed = new Promise((resolve) => device.once('close', resolve));
    peer.socket.terminate();
    await closed;
    const handled = device.handle('E1.pos1', 2, { req_id: 'h-offline' });
    const second = await edge.nextPeer();
    expect(await second.next('handle')).toEqual({
      op: 'handle',
      id: 'E1.pos1',
      status: 2,
      req_id: 'h-offline',
    });
    second.reply('handle', 0, { req_id: 'h-offline', data: { id: 'E1.pos1', event_id: 'E1' } });
    await expect(handled).resolves.toMatchObject({ ok: true });
  });
});

describe('when the client closes with a handle unanswered', () => {
  it('rejects it with CLIENT_CLOSED', async () => {
    const handled = device.handle('E1.pos1', 2);
    const assertion = expect(handled).rejects.toMatchObject({ kind: 'CLIENT_CLOSED' });
    await peer.next('handle');
    await device.close();
    await assertion;
  });
});
