// The route script on a real Redis (SPEC §3): in one round trip it finds each message's connection and counts the
// push; an acked message, a device without a connection and a spent budget push nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { Inbox, type Presence } from '#eventlog';
import { messageIdOf, newEventId } from '#events';
import { eventLogOnRedis, notifyRequested, registerAll } from '#test-support';

const SHOP = 'shop-route';

describe('when the dispatcher routes pushes', () => {
  const world = eventLogOnRedis();
  let inbox: Inbox;
  let eventId = '';
  const online: Presence = {
    conn_id: 'c-1',
    edge_id: 'edge-1',
    shop_id: SHOP,
    client_id: 'pos-1',
    type: 'main',
    connected_at: '2026-12-05T00:00:00.000Z',
    remote_addr: '10.0.0.1',
  };

  beforeAll(async () => {
    inbox = new Inbox(world.ctx.redis, world.ctx.keys);
    await registerAll(world.log, SHOP, { 'pos-1': 'main', 'pos-2': 'main', waiter: 'sub' });
    ({ eventId } = await world.log.appendNotify(notifyRequested(SHOP, { req_id: 'r1' }), {
      tokenId: 'waiter-t1',
      type: 'sub',
    }));
    await world.ctx.redis.hset(world.ctx.keys.presence(SHOP), 'pos-1', JSON.stringify(online));
  });

  const items = (limit: number) => [
    { id: messageIdOf(eventId, 'pos-1'), clientId: 'pos-1', limit },
    { id: messageIdOf(eventId, 'pos-2'), clientId: 'pos-2', limit },
  ];

  it('counts the push of a connected device and answers its connection; skips one without a connection', async () => {
    expect(await inbox.routePushes(SHOP, items(3))).toEqual([
      { attempt: 1, route: online },
      { attempt: 0, route: null },
    ]);
    expect(await inbox.routePushes(SHOP, items(3))).toEqual([
      { attempt: 2, route: online },
      { attempt: 0, route: null },
    ]);
    // Not counted while offline: the next login's backlog starts it again.
    expect(
      await world.ctx.redis.hget(world.ctx.keys.attempts(SHOP), messageIdOf(eventId, 'pos-2')),
    ).toBeNull();
  });

  it('answers the spent budget as a negative count, and pushes nothing', async () => {
    expect((await inbox.routePushes(SHOP, items(2)))[0]).toEqual({ attempt: -2, route: null });
  });

  it('pushes nothing once the message is acked', async () => {
    await world.log.ack(SHOP, 'pos-1', 'edge:e1', [messageIdOf(eventId, 'pos-1')], newEventId(), Date.now());
    expect((await inbox.routePushes(SHOP, items(10)))[0]).toEqual({ attempt: 0, route: null });
  });
});
