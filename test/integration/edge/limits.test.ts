// SPEC §3's limits, each set small so the test reaches it: frame size, rate, login timeout, dead peers and
// slow readers. Each closes only the offending socket; a neighbour on the same edge carries on.
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeEdgeCommand } from '#events';
import { openRaw, type RawSocket, shopEvents, waitFor } from '#test-support';
import { type EdgeWorld, edgeWorld, loggedIn, registered } from './fixture';

async function expectAlive(socket: RawSocket) {
  socket.send({ op: 'ping', req_id: 'alive?' });
  expect(await socket.next((f) => f.req_id === 'alive?')).toMatchObject({ op: 'pong', code: 0 });
}

async function closeOf(world: EdgeWorld, shopId: string, connId: string) {
  return waitFor(async () =>
    (await shopEvents(world.ctx, shopId, 'ConnectionClosed')).find((e) => e.data.conn_id === connId),
  );
}

describe('when a frame is over EDGE_MAX_FRAME_BYTES', () => {
  const world = edgeWorld({ EDGE_MAX_FRAME_BYTES: '1024' });

  it('closes that socket with 1009 and records why', async () => {
    const { token } = await registered(world.ctx, 'big', 'w1', 'sub');
    const neighbour = await loggedIn(world.url, (await registered(world.ctx, 'big', 'w2', 'sub')).token);
    const socket = await loggedIn(world.url, token);
    socket.send({ op: 'ping', pad: 'x'.repeat(1000) }); // under the limit: answered
    expect(await socket.next()).toMatchObject({ op: 'pong' });
    socket.send({ op: 'ping', pad: 'x'.repeat(1100) });
    expect((await socket.closed).code).toBe(1009);
    expect((await closeOf(world, 'big', socket.connId)).data).toMatchObject({
      reason: 'frame_too_large',
      close_code: 1009,
    });
    await expectAlive(neighbour);
    neighbour.ws.close();
  });
});

describe('when a connection sends more than EDGE_RATE_PER_S with bursts of EDGE_RATE_BURST', () => {
  const world = edgeWorld({ EDGE_RATE_PER_S: '1', EDGE_RATE_BURST: '5' });

  it('answers 429 past the burst, then closes with 1008 if it persists', async () => {
    const neighbour = await openRaw(world.url);
    const socket = await openRaw(world.url);
    for (let i = 0; i < 40; i++) socket.send({ op: 'ping', req_id: `p${i}` });
    expect((await socket.closed).code).toBe(1008);
    const pongs = socket.frames.filter((f) => f.op === 'pong');
    const refusals = socket.frames.filter((f) => f.code === 429);
    expect(pongs.length).toBeGreaterThanOrEqual(5);
    expect(pongs.length).toBeLessThan(8); // the burst, and what the rate refilled meanwhile
    expect(refusals.length).toBeGreaterThan(0);
    // Each refusal names the frame it refuses, so a client can tell which request to send again.
    expect(refusals[0]).toMatchObject({ op: 'ping', code: 429, msg: 'too many frames' });
    expect(refusals.every((f) => typeof f.req_id === 'string')).toBe(true);
    await expectAlive(neighbour);
    neighbour.ws.close();
  });
});

describe('when a socket does not log in within EDGE_LOGIN_TIMEOUT_MS', () => {
  const world = edgeWorld({ EDGE_LOGIN_TIMEOUT_MS: '300' });

  it('closes it with 4408, and leaves a socket that logged in open', async () => {
    const { token } = await registered(world.ctx, 'slow-login', 'w1', 'sub');
    const idle = await openRaw(world.url);
    const busy = await loggedIn(world.url, token);
    const closed = await idle.closed;
    expect(closed.code).toBe(4408);
    await expectAlive(busy);
    busy.ws.close();
  });
});

describe('when a peer stops answering pings', () => {
  const world = edgeWorld({ EDGE_PING_INTERVAL_MS: '50' });

  it('cuts it after two missed pongs and records it, while a live peer stays', async () => {
    const dead = await registered(world.ctx, 'pings', 'w1', 'sub');
    const live = await registered(world.ctx, 'pings', 'w2', 'sub');
    // A vanished peer answers nothing, not even pings (ws answers them itself unless told not to).
    const silent = await loggedIn(world.url, dead.token, {}, { autoPong: false });
    const answering = await loggedIn(world.url, live.token);
    let pings = 0;
    answering.ws.on('ping', () => {
      pings += 1;
    });
    expect((await silent.closed).code).toBe(1006);
    expect((await closeOf(world, 'pings', silent.connId)).data).toMatchObject({ reason: 'dead_peer' });
    await waitFor(() => pings >= 5, { what: 'five pings answered' });
    await expectAlive(answering);
    answering.ws.close();
  });
});

describe('when a device stops reading', () => {
  const world = edgeWorld({ EDGE_MAX_BUFFERED_BYTES: '65536' });

  it('closes it (1013) once its send buffer passes EDGE_MAX_BUFFERED_BYTES, instead of growing memory', async () => {
    const { token } = await registered(world.ctx, 'slow', 'm1', 'main');
    const neighbour = await loggedIn(world.url, (await registered(world.ctx, 'slow', 'm2', 'main')).token);
    const reader = await loggedIn(world.url, token);
    // ws has no public way to stop reading; pausing its TCP socket is what a stuck device looks like.
    (reader.ws as unknown as { _socket: Socket })._socket.pause();
    const channel = world.ctx.keys.edgeChannelOfShop('slow', world.edge.edgeId);
    const frame = JSON.stringify({ op: 'broadcast', pad: 'x'.repeat(60_000) });
    const command = encodeEdgeCommand({ kind: 'deliver', conn_id: reader.connId, frames: [frame, frame] });
    const recorded = async () =>
      (await shopEvents(world.ctx, 'slow', 'ConnectionClosed')).find((e) => e.data.conn_id === reader.connId);
    // Push until the edge gives up on the reader: the kernel's buffers take a few MB first.
    const closed = await waitFor(
      async () => {
        for (let i = 0; i < 10; i++) await world.ctx.redis.spublish(channel, command);
        return recorded();
      },
      { intervalMs: 1, what: 'the slow reader closed' },
    );
    expect(closed.data).toMatchObject({ reason: 'slow_reader', close_code: 1013 });
    expect(world.edge.connectionCount()).toBe(1);
    (reader.ws as unknown as { _socket: Socket })._socket.resume();
    expect([1013, 1006]).toContain((await reader.closed).code);
    await expectAlive(neighbour);
    neighbour.ws.close();
  });
});
