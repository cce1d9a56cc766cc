// SPEC §5.6: Redis away makes the edge refuse writes with 503 "event log unavailable" (the outcome is unknown:
// retry with the same req_id), never a false ack, while open sockets stay open. The edge reaches Redis through a
// TCP proxy the test cuts.
import { afterEach, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { notifyFrame, openRaw, shopEvents, waitFor } from '#test-support';
import { edgeBehindRedisProxy, loggedIn, registered } from './fixture';

const UNAVAILABLE = {
  code: 503,
  msg: 'event log unavailable: the outcome is unknown; retry with the same req_id',
};

const world = edgeBehindRedisProxy();
afterEach(async () => {
  world.proxy.resume();
  await waitFor(async () => (await health('/readyz')) === 200, { what: 'the edge ready again' });
});

async function health(path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${world.edge.port}${path}`)).status;
}

describe('when Redis is unreachable', () => {
  it('answers writes and logins with 503, keeps every socket open, and records nothing', async () => {
    const sub = await registered(world.ctx, 'down', 'w1', 'sub');
    const main = await registered(world.ctx, 'down', 'm1', 'main');
    const waiter = await loggedIn(world.url, sub.token);
    const leaving = await loggedIn(world.url, main.token);

    world.proxy.cut();
    waiter.send(notifyFrame('r1'));
    expect(await waiter.next()).toMatchObject({ op: 'notify', req_id: 'r1', ...UNAVAILABLE });
    waiter.send({ op: 'ack', id: `${'0'.repeat(26)}.w1`, req_id: 'a1' });
    expect(await waiter.next()).toMatchObject({ op: 'ack', req_id: 'a1', ...UNAVAILABLE });
    const late = await openRaw(world.url);
    late.send({ op: 'login', token: sub.token, req_id: 'l1' });
    expect(await late.next()).toMatchObject({ op: 'login', req_id: 'l1', ...UNAVAILABLE });
    for (const socket of [waiter, late]) {
      socket.send({ op: 'ping', req_id: 'still-there' });
      expect(await socket.next()).toMatchObject({ op: 'pong', code: 0 });
    }
    expect(await health('/readyz')).toBe(503);
    expect(await health('/healthz')).toBe(200);
    leaving.ws.close(); // its ConnectionClosed is owed until Redis is back
    await leaving.closed;

    world.proxy.resume();
    await waitFor(async () => (await health('/readyz')) === 200, { what: 'the edge ready again' });
    waiter.send(notifyFrame('r1'));
    const accepted = await waiter.next();
    expect(accepted).toMatchObject({ op: 'notify', code: 0, req_id: 'r1' });
    late.send({ op: 'login', token: main.token });
    expect(await late.next()).toMatchObject({ op: 'login', code: 0 });

    const notifies = await shopEvents(world.ctx, 'down', 'NotifyRequested');
    expect(notifies.map((e) => e.id)).toEqual([(accepted.data as { event_id: string }).event_id]);
    const closed = await waitFor(async () =>
      (await shopEvents(world.ctx, 'down', 'ConnectionClosed')).find(
        (e) => e.data.conn_id === leaving.connId,
      ),
    );
    expect(closed.data.reason).toBe('closed');
    waiter.ws.close();
    late.ws.close();
  });

  it('makes a notify whose outcome is unknown (Redis stalled) safe to retry with its req_id', async () => {
    const sub = await registered(world.ctx, 'stalled', 'w1', 'sub');
    await registered(world.ctx, 'stalled', 'm1', 'main');
    const waiter = await loggedIn(world.url, sub.token);
    world.proxy.stall();
    waiter.send(notifyFrame('r2'));
    // The command timed out, but its bytes may reach Redis later: the reply cannot know, the req_id can.
    expect(await waiter.next((f) => f.op === 'notify', 10_000)).toMatchObject({
      req_id: 'r2',
      ...UNAVAILABLE,
    });
    world.proxy.resume();
    await waitFor(async () => (await health('/readyz')) === 200, { what: 'the edge ready again' });
    waiter.send(notifyFrame('r2'));
    const retried = await waiter.next((f) => f.op === 'notify');
    expect(retried).toMatchObject({ code: 0, req_id: 'r2' });
    const notifies = await shopEvents(world.ctx, 'stalled', 'NotifyRequested');
    expect(notifies.map((e) => e.id)).toEqual([(retried.data as { event_id: string }).event_id]);
    waiter.ws.close();
  });

  it('asks its devices to reconnect when a dispatcher swept the edge as dead meanwhile', async () => {
    const { token } = await registered(world.ctx, 'swept', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    world.proxy.cut();
    // The edge's heartbeat is now failing: age it, as if its TTL had passed, and let a dispatcher sweep it.
    await world.ctx.redis.zadd(world.ctx.keys.edges(), 0, world.edge.edgeId);
    const dispatcher = await startDispatcher(world.ctx.config, { log: world.ctx.log, healthServer: false });
    try {
      await waitFor(async () => (await shopEvents(world.ctx, 'swept', 'ConnectionClosed')).length > 0, {
        what: 'the sweep',
      });
    } finally {
      await dispatcher.stop();
    }
    world.proxy.resume();
    expect((await socket.closed).code).toBe(1012);
    const closes = await shopEvents(world.ctx, 'swept', 'ConnectionClosed');
    expect(closes.map((e) => e.data)).toEqual([
      expect.objectContaining({ conn_id: socket.connId, reason: 'edge_lost' }),
    ]);
    const again = await loggedIn(world.url, token);
    expect(await world.ctx.redis.hget(world.ctx.keys.presence('swept'), 'm1')).toContain(again.connId);
    again.ws.close();
  });
});
