// The route script on a real Redis (SPEC §3): in one round trip it finds each message's connection and counts the
// push; an acked message, a device without a connection and a spent budget push nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, Inbox, type Presence } from '#eventlog';
import { createEvent, type DeviceType, messageIdOf, newEventId } from '#events';
import { createTestContext, type TestContext } from '#test-support';

const SHOP = 'shop-route';

describe('when the dispatcher routes pushes', () => {
  let ctx: TestContext;
  let log: EventLog;
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
    ctx = await createTestContext();
    log = new EventLog(ctx.redis, ctx.keys);
    inbox = new Inbox(ctx.redis, ctx.keys);
    const register = (client_id: string, type: DeviceType) =>
      log.register(
        createEvent({
          type: 'DeviceRegistered',
          shopId: SHOP,
          source: 'api',
          data: { client_id, type, token_id: `${client_id}-t1` },
        }),
      );
    await register('pos-1', 'main');
    await register('pos-2', 'main');
    await register('waiter', 'sub');
    ({ eventId } = await log.appendNotify(
      createEvent({
        type: 'NotifyRequested',
        shopId: SHOP,
        source: 'edge:e1',
        data: {
          req_id: 'r1',
          from_client_id: 'waiter',
          from_type: 'sub',
          audience: 'mains',
          recipients: [],
          table_id: 'A1',
          type: 'checkout',
          status: 0,
          data: {},
          user_info: {},
        },
      }),
      { tokenId: 'waiter-t1', type: 'sub' },
    ));
    await ctx.redis.hset(ctx.keys.presence(SHOP), 'pos-1', JSON.stringify(online));
  });
  afterAll(async () => {
    await ctx?.cleanup();
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
    expect(await ctx.redis.hget(ctx.keys.attempts(SHOP), messageIdOf(eventId, 'pos-2'))).toBeNull();
  });

  it('answers the spent budget as a negative count, and pushes nothing', async () => {
    expect((await inbox.routePushes(SHOP, items(2)))[0]).toEqual({ attempt: -2, route: null });
  });

  it('pushes nothing once the message is acked', async () => {
    await log.ack(SHOP, 'pos-1', 'edge:e1', [messageIdOf(eventId, 'pos-1')], newEventId(), Date.now());
    expect((await inbox.routePushes(SHOP, items(10)))[0]).toEqual({ attempt: 0, route: null });
  });
});
