// Presence: which device is on which edge and connection, cleaned up when a socket closes, when the device logs
// in again (here or on another edge: the older socket gets 4409), and when a whole edge dies.
import { beforeAll, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { start as startEdge } from '#edge';
import { EDGE_HEARTBEAT_TTL_MS, PresenceBook } from '#eventlog';
import { notifyFrame, shopEvents, spawnService, waitFor } from '#test-support';
import { edgeWorld, listeningPort, loggedIn, registered } from './fixture';

const world = edgeWorld();
let book: PresenceBook;
beforeAll(async () => {
  book = new PresenceBook(world.ctx.redis, world.ctx.keys);
});

async function onlineIn(shopId: string) {
  return book.online(shopId, await book.liveEdges(Date.now()));
}

describe('when a socket closes', () => {
  it('drops the device from presence and from the edge, and records ConnectionClosed', async () => {
    const { token } = await registered(world.ctx, 'p-close', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    expect((await onlineIn('p-close')).get('m1')).toMatchObject({
      conn_id: socket.connId,
      edge_id: world.edge.edgeId,
      type: 'main',
    });
    const listed = world.ctx.keys.edgeConnections(world.edge.edgeId);
    expect(await world.ctx.redis.hexists(listed, socket.connId)).toBe(1);
    socket.ws.close(1000);
    const closed = await waitFor(() =>
      shopEvents(world.ctx, 'p-close', 'ConnectionClosed').then((events) => events[0]),
    );
    expect(closed?.data).toMatchObject({ conn_id: socket.connId, reason: 'closed', close_code: 1000 });
    expect((await onlineIn('p-close')).size).toBe(0);
    // Unlisted once its close is recorded, with the other closes of the tick.
    await waitFor(async () => (await world.ctx.redis.hexists(listed, socket.connId)) === 0, {
      what: 'unlisted',
    });
  });

  it('unlists many sockets that close at once, each after its close is recorded', async () => {
    const sockets = [];
    for (let i = 0; i < 30; i++) {
      const { token } = await registered(world.ctx, 'p-many', `m${i}`, 'main');
      sockets.push(await loggedIn(world.url, token));
    }
    const listed = world.ctx.keys.edgeConnections(world.edge.edgeId);
    const ids = sockets.map((socket) => socket.connId);
    expect(await world.ctx.redis.hmget(listed, ...ids)).not.toContain(null);
    for (const socket of sockets) socket.ws.close(1000);
    await waitFor(async () => (await shopEvents(world.ctx, 'p-many', 'ConnectionClosed')).length === 30, {
      what: '30 closes recorded',
    });
    await waitFor(async () => (await world.ctx.redis.hmget(listed, ...ids)).every((v) => v === null), {
      what: 'all 30 unlisted',
    });
    expect((await onlineIn('p-many')).size).toBe(0);
  });
});

describe('when a device logs in again', () => {
  it('closes the older socket on the same edge with 4409', async () => {
    const { token } = await registered(world.ctx, 'p-twice', 'm1', 'main');
    const older = await loggedIn(world.url, token);
    const newer = await loggedIn(world.url, token);
    expect((await older.closed).code).toBe(4409);
    const closes = await waitFor(() =>
      shopEvents(world.ctx, 'p-twice', 'ConnectionClosed').then((events) =>
        events.length > 0 ? events : null,
      ),
    );
    expect(closes.map((e) => e.data)).toEqual([
      expect.objectContaining({ conn_id: older.connId, reason: 'replaced', close_code: 4409 }),
    ]);
    expect((await onlineIn('p-twice')).get('m1')?.conn_id).toBe(newer.connId);
    newer.send({ op: 'ping' });
    expect(await newer.next()).toMatchObject({ op: 'pong' });
    newer.ws.close();
  });

  it('closes the older socket on another edge with 4409', async () => {
    const other = await startEdge(
      { ...world.ctx.config, edge: { ...world.ctx.config.edge, id: `${world.edge.edgeId}-b` } },
      { log: world.ctx.log },
    );
    try {
      const { token } = await registered(world.ctx, 'p-moved', 'm1', 'main');
      const older = await loggedIn(world.url, token);
      const newer = await loggedIn(`ws://127.0.0.1:${other.port}/ws`, token);
      expect((await older.closed).code).toBe(4409);
      expect((await onlineIn('p-moved')).get('m1')).toMatchObject({
        conn_id: newer.connId,
        edge_id: other.edgeId,
      });
      await waitFor(() => world.edge.connectionCount() === 0, { what: 'the first edge forgot the socket' });
      newer.ws.close();
    } finally {
      await other.stop();
    }
  });
});

describe('when the close of a replaced socket was lost', () => {
  it('refuses its next notify with 409 and closes it with 4409', async () => {
    const sub = await registered(world.ctx, 'p-lost', 'w1', 'sub');
    await registered(world.ctx, 'p-lost', 'm1', 'main');
    const older = await loggedIn(world.url, sub.token);
    // A newer login on another edge took the presence; its pub/sub close never reached this edge.
    const presence = world.ctx.keys.presence('p-lost');
    const entry = JSON.parse((await world.ctx.redis.hget(presence, 'w1'))!) as Record<string, string>;
    await world.ctx.redis.hset(
      presence,
      'w1',
      JSON.stringify({ ...entry, conn_id: 'c_newer', edge_id: 'e9' }),
    );
    older.send(notifyFrame('from-the-past'));
    expect(await older.next()).toMatchObject({ op: 'notify', code: 409, req_id: 'from-the-past' });
    expect((await older.closed).code).toBe(4409);
    expect(await shopEvents(world.ctx, 'p-lost', 'NotifyRequested')).toEqual([]);
    expect(JSON.parse((await world.ctx.redis.hget(presence, 'w1'))!)).toMatchObject({ conn_id: 'c_newer' });
  });
});

describe('when an edge is killed', () => {
  it('counts its devices offline within seconds, and a dispatcher records their closes', async () => {
    const edgeId = `${world.edge.edgeId}-killed`;
    const killed = spawnService('edge', { ...world.ctx.env, EDGE_ID: edgeId, LOG_LEVEL: 'info' });
    try {
      const url = `ws://127.0.0.1:${await listeningPort(killed)}/ws`;
      const { token } = await registered(world.ctx, 'p-killed', 'm1', 'main');
      const socket = await loggedIn(url, token);
      expect((await onlineIn('p-killed')).get('m1')?.edge_id).toBe(edgeId);

      await killed.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(async () => !(await onlineIn('p-killed')).has('m1'), {
        timeoutMs: EDGE_HEARTBEAT_TTL_MS + 3000,
        what: "the killed edge's device offline",
      });
      expect(Date.now() - killedAt).toBeLessThan(EDGE_HEARTBEAT_TTL_MS + 2000);
      expect((await socket.closed).code).toBe(1006);

      const dispatcher = await startDispatcher(world.ctx.config, { log: world.ctx.log, healthServer: false });
      try {
        const closed = await waitFor(() =>
          shopEvents(world.ctx, 'p-killed', 'ConnectionClosed').then((events) => events[0]),
        );
        expect(closed?.data).toMatchObject({ conn_id: socket.connId, edge_id: edgeId, reason: 'edge_lost' });
        expect(await world.ctx.redis.hget(world.ctx.keys.presence('p-killed'), 'm1')).toBeNull();
      } finally {
        await dispatcher.stop();
      }
    } finally {
      await killed.kill('SIGKILL');
    }
  });

  it('records the closes of its earlier run when it restarts with the same EDGE_ID', async () => {
    const edgeId = `${world.edge.edgeId}-restarted`;
    const first = spawnService('edge', { ...world.ctx.env, EDGE_ID: edgeId, LOG_LEVEL: 'info' });
    try {
      const url = `ws://127.0.0.1:${await listeningPort(first)}/ws`;
      const { token } = await registered(world.ctx, 'p-restart', 'm1', 'main');
      const socket = await loggedIn(url, token);
      await first.kill('SIGKILL');
      await socket.closed;
    } finally {
      await first.kill('SIGKILL');
    }
    const second = await startEdge(
      { ...world.ctx.config, edge: { ...world.ctx.config.edge, id: edgeId } },
      { log: world.ctx.log },
    );
    try {
      const closes = await shopEvents(world.ctx, 'p-restart', 'ConnectionClosed');
      expect(closes.map((e) => e.data)).toEqual([expect.objectContaining({ reason: 'edge_restart' })]);
      expect(await world.ctx.redis.hget(world.ctx.keys.presence('p-restart'), 'm1')).toBeNull();
      expect(await world.ctx.redis.hlen(world.ctx.keys.edgeConnections(edgeId))).toBe(0);
    } finally {
      await second.stop();
    }
  });
});
