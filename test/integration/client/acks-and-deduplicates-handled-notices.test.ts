import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceClient } from '#client';
import type { HandledFrame } from '#events';
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

describe('when a handled notice arrives with auto-ack on', () => {
  it('emits it to the app once and acks it in `handled`', async () => {
    const [client, peer] = await connected();
    const seen: HandledFrame[] = [];
    client.on('handled', (notice) => seen.push(notice));
    peer.pushHandled('E1.pos1', { handled_by: { kind: 'api' }, handled_at: '2024-05-01T12:00:00.000Z' });
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    expect(seen).toEqual([
      {
        op: 'handled',
        id: 'E1.pos1',
        event_id: 'E1',
        status: 2,
        handled_by: { kind: 'api' },
        handled_at: '2024-05-01T12:00:00.000Z',
      },
    ]);
    expect(await client.next('handled')).toEqual(seen[0]);
  });

  it('acks a repeated notice again but emits it once', async () => {
    const [client, peer] = await connected();
    const seen: string[] = [];
    client.on('handled', (notice) => seen.push(notice.id));
    peer.pushHandled('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    peer.pushHandled('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    peer.pushHandled('E2.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E2.pos1'] });
    expect(seen).toEqual(['E1.pos1', 'E2.pos1']);
  });

  it('treats a notice about a message it acked as new, and keeps the two acks apart', async () => {
    const [client, peer] = await connected();
    peer.pushMessage('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', ids: ['E1.pos1'] });
    peer.pushHandled('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    expect((await client.next('handled')).id).toBe('E1.pos1');
  });

  it('recognises a notice re-sent on a new connection after the first ack was lost', async () => {
    const [client, first] = await connected();
    let emitted = 0;
    client.on('handled', () => emitted++);
    first.pushHandled('E1.pos1');
    await client.next('handled');
    first.socket.terminate();
    const second = await edge.nextPeer();
    second.pushHandled('E1.pos1');
    expect(await second.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    expect(emitted).toBe(1);
  });
});

describe('when auto-ack is off', () => {
  it('acks a notice only through ackHandled(), and then treats repeats as acked', async () => {
    const [client, peer] = await connected({ autoAck: false });
    let emitted = 0;
    client.on('handled', () => emitted++);
    peer.pushHandled('E1.pos1');
    await client.next('handled');
    peer.pushHandled('E1.pos1'); // not acked yet: the app has not dealt with it, so it sees the re-send
    await client.next('handled');
    client.ackHandled('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    peer.pushHandled('E1.pos1');
    expect(await peer.next('ack')).toEqual({ op: 'ack', handled: ['E1.pos1'] });
    expect(emitted).toBe(2);
    expect(peer.frames.filter((frame) => frame.op === 'ack')).toEqual([]);
  });
});
