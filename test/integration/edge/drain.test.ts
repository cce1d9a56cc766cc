// SPEC §7 drain: /readyz turns 503, new upgrades are refused while health is still answered, frames already
// received are answered, and every socket is closed with 1001, spread over EDGE_DRAIN_MS. SIGTERM does it
// in the `broker start edge` process, which then exits 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestContext,
  notifyFrame,
  openRaw,
  shopEvents,
  spawnService,
  type TestContext,
  waitFor,
} from '#test-support';
import { edgeBehindRedisProxy, edgeWorld, listeningPort, loggedIn, registered } from './fixture';

async function status(port: number, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
}

describe('when the edge drains', () => {
  const DRAIN_MS = 1000;
  const world = edgeWorld({ EDGE_DRAIN_MS: String(DRAIN_MS) });

  it('turns /readyz 503, refuses upgrades, and closes every socket with 1001 over the window', async () => {
    const port = world.edge.port;
    const devices = await Promise.all(
      Array.from({ length: 16 }, (_, i) => registered(world.ctx, 'drain', `d${i}`, 'sub')),
    );
    const sockets = [
      ...(await Promise.all(devices.map(({ token }) => loggedIn(world.url, token)))),
      ...(await Promise.all([openRaw(world.url), openRaw(world.url)])), // not logged in yet
    ];
    const closedAt: number[] = [];
    const closes = sockets.map((socket) =>
      socket.closed.then((closed) => {
        closedAt.push(Date.now());
        return closed.code;
      }),
    );
    expect(await status(port, '/readyz')).toBe(200);

    const drained = world.edge.drain();
    expect(await status(port, '/readyz')).toBe(503);
    expect(await status(port, '/healthz')).toBe(200);
    await expect(openRaw(world.url)).rejects.toThrow(/503/);
    await drained;

    expect(await Promise.all(closes)).toEqual(sockets.map(() => 1001));
    // Spread, not one burst: the last close comes well after the first (slices wait DRAIN_MS / 18 each).
    expect(Math.max(...closedAt) - Math.min(...closedAt)).toBeGreaterThanOrEqual(DRAIN_MS / 2);
    const recorded = await waitFor(async () => {
      const events = await shopEvents(world.ctx, 'drain', 'ConnectionClosed');
      return events.length === devices.length ? events : null;
    });
    expect(new Set(recorded.map((e) => e.data.reason))).toEqual(new Set(['drain']));
    expect(world.edge.connectionCount()).toBe(0);
  });
});

describe('when a notify is in flight as the drain begins', () => {
  const world = edgeBehindRedisProxy();

  it('answers it before closing the socket with 1001', async () => {
    const sub = await registered(world.ctx, 'inflight', 'w1', 'sub');
    await registered(world.ctx, 'inflight', 'm1', 'main');
    const socket = await loggedIn(world.url, sub.token);
    world.proxy.stall(); // holds the notify's append in flight
    socket.send(notifyFrame('r1'));
    socket.send({ op: 'ping' });
    await socket.next((f) => f.op === 'pong'); // frames are handled in order: the notify is in flight now
    const drained = world.edge.drain();
    world.proxy.resume();
    const reply = await socket.next((f) => f.op === 'notify');
    expect(reply).toMatchObject({ code: 0, req_id: 'r1' });
    expect((await socket.closed).code).toBe(1001);
    await drained;
    const [event] = await shopEvents(world.ctx, 'inflight', 'NotifyRequested');
    expect(event?.id).toBe((reply.data as { event_id: string }).event_id);
  });
});

describe('when `broker start edge` gets SIGTERM', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(() => ctx?.cleanup());

  it('closes every socket with 1001, records the closes, leaves the edge list and exits 0', async () => {
    const edgeId = `${ctx.config.edge.id}-sigterm`;
    const service = spawnService('edge', { ...ctx.env, EDGE_ID: edgeId, LOG_LEVEL: 'info' });
    try {
      const url = `ws://127.0.0.1:${await listeningPort(service)}/ws`;
      const devices = await Promise.all(
        ['m1', 'w1'].map((id, i) => registered(ctx, 'term', id, i ? 'sub' : 'main')),
      );
      const sockets = await Promise.all(devices.map(({ token }) => loggedIn(url, token)));
      service.child.kill('SIGTERM');
      expect(await Promise.all(sockets.map(async (s) => (await s.closed).code))).toEqual([1001, 1001]);
      expect(await service.exited).toEqual({ code: 0, signal: null });
      const closes = await shopEvents(ctx, 'term', 'ConnectionClosed');
      expect(closes.map((e) => [e.data.conn_id, e.data.reason]).sort()).toEqual(
        sockets.map((s) => [s.connId, 'drain']).sort(),
      );
      expect(await ctx.redis.zscore(ctx.keys.edges(), edgeId)).toBeNull();
      expect(await ctx.redis.hlen(ctx.keys.edgeConnections(edgeId))).toBe(0);
      expect(await ctx.redis.hlen(ctx.keys.presence('term'))).toBe(0);
    } finally {
      await service.kill('SIGKILL');
    }
  });
});
