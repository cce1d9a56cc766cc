import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '#client';
import { ERRORS } from '#events';
import { clientFor, type Peer, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge;
let device: DeviceClient;
let peer: Peer;

beforeEach(async () => {
  edge = await ScriptedEdge.start();
  device = clientFor(edge, { type: 'sub', clientId: 'waiter1' });
  await device.connect();
  peer = await edge.nextPeer();
});

afterEach(async () => {
  await device.close();
  await edge.stop();
});

describe('when the event log is unavailable (503)', () => {
  it('sends the same req_id again after a backoff until it is recorded', async () => {
    const recorded = device.notify({ req_id: 'r-503', table_id: 3, type: 'discount', data: { pct: 10 } });
    const first = await peer.next('notify');
    peer.reply('notify', 503, { req_id: 'r-503', msg: ERRORS.LOG_UNAVAILABLE.message });
    const second = await peer.next('notify');
    peer.reply('notify', 503, { req_id: 'r-503', msg: ERRORS.LOG_UNAVAILABLE.message });
    const third = await peer.next('notify');
    expect(second).toEqual(first);
    expect(third).toEqual(first);
    peer.reply('notify', 0, { req_id: 'r-503', data: { event_id: 'E1' } });
    await expect(recorded).resolves.toEqual({ event_id: 'E1', req_id: 'r-503' });
  });

  it('gives up with TIMEOUT after notifyTimeoutMs', async () => {
    const recorded = device.notify({ req_id: 'r-down', table_id: 3, type: 'discount' }, { timeoutMs: 200 });
    const failure = recorded.catch((err: unknown) => err);
    for (;;) {
      const frame = await Promise.race([peer.next('notify'), failure.then(() => undefined)]);
      if (!frame) break;
      peer.reply('notify', 503, { req_id: 'r-down', msg: ERRORS.LOG_UNAVAILABLE.message });
    }
    expect(await failure).toMatchObject({ kind: 'TIMEOUT', reqId: 'r-down' });
    expect(device.pendingNotifies).toBe(0);
  });
});

describe('when the edge refuses a notify', () => {
  it('rejects with the code and message of the reply', async () => {
    const recorded = device.notify({ req_id: 'r-404', table_id: 3, type: 'add_dish' });
    await peer.next('notify');
    peer.reply('notify', 404, { req_id: 'r-404', msg: 'shop has no registered main device' });
    await expect(recorded).rejects.toMatchObject({
      kind: 'REFUSED',
      code: 404,
      msg: 'shop has no registered main device',
      reqId: 'r-404',
    });
  });

  it('matches replies by req_id, whatever their order', async () => {
    const a = device.notify({ req_id: 'a', table_id: 1, type: 'add_dish' });
    const b = device.notify({ req_id: 'b', table_id: 2, type: 'add_dish' });
    await peer.next('notify');
    await peer.next('notify');
    peer.reply('notify', 0, { req_id: 'b', data: { event_id: 'EB' } });
    peer.reply('notify', 400, { req_id: 'a', msg: '/type: Expected string' });
    await expect(b).resolves.toMatchObject({ event_id: 'EB' });
    await expect(a).rejects.toMatchObject({ code: 400 });
  });

  it('refuses a notify over the frame limit without sending it', async () => {
    await device.close();
    device = clientFor(edge, { maxFrameBytes: 256 });
    await device.connect();
    await expect(
      device.notify({ req_id: 'big', table_id: 1, type: 'add_dish', data: { note: 'x'.repeat(300) } }),
    ).rejects.toMatchObject({ kind: 'FRAME_TOO_LARGE' });
  });
});

describe('when the app pings', () => {
  it('resolves with the pong that carries its req_id', async () => {
    const pong = device.ping();
    const ping = await peer.next('ping');
    peer.reply('pong', 0, { req_id: ping.req_id });
    await expect(pong).resolves.toMatchObject({ op: 'pong', code: 0, req_id: ping.req_id });
  });
});
