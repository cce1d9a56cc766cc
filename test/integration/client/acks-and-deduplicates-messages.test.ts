import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceClient, LoginInfo } from '#client';
import { clientFor, type Peer, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge;
let device: DeviceClient | undefined;

beforeEach(async () => {
  edge = await ScriptedEdge.start();
});

afterEach(async () => {
  await device?.close();
  await edge.stop();
});

async function connected(options: Parameters<typeof clientFor>[1] = {}): Promise<[DeviceClient, Peer]> {
  device = clientFor(edge, options);
  await device.connect();
  return [device, await edge.nextPeer()];
}

describe('when messages arrive with auto-ack on', () => {
  it('hands each to the app and acks a burst in one frame', async () => {
    const [client, peer] = await connected();
    peer.pushBurst([{ id: 'E1.pos1' }, { id: 'E2.pos1' }, { id: 'E3.pos1' }]);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1', 'E2.pos1', 'E3.pos1'] });
    expect(client.messages().map((frame) => frame.id)).toEqual(['E1.pos1', 'E2.pos1', 'E3.pos1']);
    expect((await client.next('message')).id).toBe('E1.pos1');
  });

  it('acks a repeated id again but hands it to the app once', async () => {
    const [client, peer] = await connected();
    const seen: string[] = [];
    client.on('message', (frame) => seen.push(`${frame.id}#${frame.attempt}`));
    peer.pushMessage('E1.pos1', 1);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    peer.pushMessage('E1.pos1', 2);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    peer.pushMessage('E2.pos1', 1);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E2.pos1'] });
    expect(seen).toEqual(['E1.pos1#1', 'E2.pos1#1']);
    expect(client.messages()).toHaveLength(2);
  });

  it('recognises a redelivery after a reconnect, when the first ack was lost with the connection', async () => {
    const [client, first] = await connected();
    first.pushMessage('E1.pos1');
    await client.next('message');
    first.socket.terminate(); // the ack may or may not have made it; the edge redelivers either way
    const second = await edge.nextPeer();
    second.pushBurst([{ id: 'E1.pos1', attempt: 2 }, { id: 'E2.pos1' }]);
    expect(await second.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1', 'E2.pos1'] });
    expect(client.messages().map((frame) => frame.id)).toEqual(['E1.pos1', 'E2.pos1']);
  });

  it('keeps the frame exactly as the edge sent it', async () => {
    const [client, peer] = await connected();
    peer.pushMessage('E1.pos1', 1, {
      table_id: 7,
      data: { dish: '牛肉面', qty: 2 },
      user_info: { name: 'Ana' },
    });
    expect(await client.next('message')).toMatchObject({
      op: 'message',
      id: 'E1.pos1',
      table_id: 7,
      data: { dish: '牛肉面', qty: 2 },
      user_info: { name: 'Ana' },
      attempt: 1,
    });
  });
});

describe('when auto-ack is off', () => {
  it('acks only when the app says so, and then treats repeats as handled', async () => {
    const [client, peer] = await connected({ autoAck: false });
    peer.pushMessage('E1.pos1', 1);
    await client.next('message');
    peer.pushMessage('E1.pos1', 2); // not acked yet: the app has not handled it, so it sees the re-push
    expect((await client.next('message')).attempt).toBe(2);
    client.ack('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    peer.pushMessage('E1.pos1', 3);
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    expect(peer.frames.filter((frame) => frame.op === 'ack')).toEqual([]);
    expect(client.messages().map((frame) => frame.attempt)).toEqual([1, 2]);
  });

  it('holds acks made while disconnected and sends them after the next login', async () => {
    const [client, first] = await connected({ autoAck: false });
    first.pushMessage('E1.pos1');
    await client.next('message');
    const relogged = new Promise<LoginInfo>((resolve) => client.once('login', resolve));
    const closed = new Promise((resolve) => client.once('close', resolve));
    first.socket.terminate();
    await closed;
    client.ack(['E1.pos1']);
    await relogged;
    const second = await edge.nextPeer();
    expect(await second.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
  });
});

describe('when a broadcast arrives', () => {
  it('hands it to the app and does not ack it', async () => {
    const [client, peer] = await connected();
    const received = new Promise((resolve) => client.once('broadcast', resolve));
    peer.send({ op: 'broadcast', event_id: 'E9', shop_id: 's1', table_id: null, type: 'menu_update' });
    expect(await received).toMatchObject({ op: 'broadcast', event_id: 'E9' });
    peer.pushMessage('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    expect(await client.next('broadcast')).toMatchObject({ event_id: 'E9' });
  });
});
