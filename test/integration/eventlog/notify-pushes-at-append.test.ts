// A sub's notify is pushed by its append (notify-12.lua, issue 18): in the same atomic step as the event, each main
// that has a connection gets a `deliver` command on its edge's channel of the shard (SPUBLISH), carrying the same frame the dispatcher and a
// login backlog would write (attempt 1, counted); the mains whose push reached no edge are named in the stream
// entry's `u` field for the dispatcher to retry; a main's notify is broadcast to the connected subs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameOf, type Presence } from '#eventlog';
import { broadcastFrameOf, createEvent, decodeEdgeCommand, type EventOf, messagesOf } from '#events';
import { entryFields, eventLogOnRedis, listenAsEdge, registerAll, waitFor } from '#test-support';

describe("when a sub's notify is appended", () => {
  const world = eventLogOnRedis();
  let subscriber: { close(): void } | undefined;
  const heard: Array<{ channel: string; text: string }> = [];

  beforeAll(async () => {
    subscriber = await listenAsEdge(world.ctx, 'edge-here', (channel, text) => heard.push({ channel, text }));
  });
  afterAll(() => subscriber?.close());

  const connect = (shop: string, client: string, edge: string) => {
    const presence: Presence = {
      conn_id: `c-${shop}-${client}`,
      edge_id: edge,
      shop_id: shop,
      client_id: client,
      type: 'main',
      connected_at: new Date().toISOString(),
      remote_addr: '127.0.0.1',
    };
    return world.ctx.redis.hset(world.ctx.keys.presence(shop), client, JSON.stringify(presence));
  };

  const notify = (shop: string, from: string, fromType: 'main' | 'sub') =>
    createEvent({
      type: 'NotifyRequested',
      shopId: shop,
      source: 'edge:e1',
      data: {
        req_id: `r-${shop}`,
        from_client_id: from,
        from_type: fromType,
        audience: fromType === 'sub' ? 'mains' : 'subs',
        recipients: [],
        table_id: 12,
        type: 'return_dish',
        status: 0,
        data: { dish: '宫保鸡丁', note: 'line\nbreak "quoted"' },
        user_info: { waiter: '小王' },
      },
    });

  /** The stream entry of an event: its fields as Redis holds them. */
  it('pushes it to each connected main on its edge, once, with the frame a backlog would write', async () => {
    await registerAll(world.log, 'here', {
      waiter: 'sub',
      'pos-a': 'main',
      'pos-b': 'main',
      'pos-off': 'main',
    });
    await connect('here', 'pos-a', 'edge-here');
    await connect('here', 'pos-b', 'edge-here');
    const event = notify('here', 'waiter', 'sub');
    const outcome = await world.log.appendNotify(event, { tokenId: 'waiter-t1', type: 'sub' });

    const deliveries = await waitFor(() => (heard.length >= 2 ? heard.splice(0) : null), { what: 'pushes' });
    const recorded = { ...event, data: { ...event.data, recipients: ['pos-a', 'pos-b', 'pos-off'] } };
    const expected = messagesOf(recorded as EventOf<'NotifyRequested'>)
      .filter((payload) => payload.to_client_id !== 'pos-off')
      .map((payload) => ({
        kind: 'deliver',
        conn_id: `c-here-${payload.to_client_id}`,
        frames: [frameOf({ kind: 'message', id: payload.id, payload }, 1)],
      }));
    expect(deliveries.map((d) => d.channel)).toEqual([
      world.ctx.keys.edgeChannelOfShop('here', 'edge-here'),
      world.ctx.keys.edgeChannelOfShop('here', 'edge-here'),
    ]);
    expect(deliveries.map((d) => decodeEdgeCommand(d.text))).toEqual(expected);
    // Counted as attempt 1; the main with no connection is left to its next login's backlog.
    const attempts = world.ctx.keys.attempts('here');
    expect(await world.ctx.redis.hget(attempts, `${outcome.eventId}.pos-a`)).toBe('1');
    expect(await world.ctx.redis.hget(attempts, `${outcome.eventId}.pos-b`)).toBe('1');
    expect(await world.ctx.redis.hget(attempts, `${outcome.eventId}.pos-off`)).toBeNull();
    expect((await entryFields(world.ctx, 'here', outcome.eventId)).u).toBe('');
  });

  it("names in the entry's u field the mains whose push reached no edge", async () => {
    await registerAll(world.log, 'gone', { waiter: 'sub', 'pos-a': 'main', 'pos-b': 'main' });
    await connect('gone', 'pos-a', 'edge-nobody-runs');
    await connect('gone', 'pos-b', 'edge-here');
    const outcome = await world.log.appendNotify(notify('gone', 'waiter', 'sub'), {
      tokenId: 'waiter-t1',
      type: 'sub',
    });
    expect((await entryFields(world.ctx, 'gone', outcome.eventId)).u).toBe('pos-a');
    expect(await world.ctx.redis.hget(world.ctx.keys.attempts('gone'), `${outcome.eventId}.pos-a`)).toBe('1');
    const delivery = await waitFor(() => heard.shift(), { what: 'the push that reached an edge' });
    expect(decodeEdgeCommand(delivery.text)).toMatchObject({ conn_id: 'c-gone-pos-b' });
  });

  it("broadcasts a main's notify to the connected subs but the sender, and a repeated req_id pushes nothing", async () => {
    await registerAll(world.log, 'mainly', {
      'pos-a': 'main',
      'pos-b': 'main',
      waiter: 'sub',
      'waiter-off': 'sub',
    });
    await connect('mainly', 'pos-a', 'edge-here');
    await connect('mainly', 'pos-b', 'edge-here');
    await world.ctx.redis.hset(
      world.ctx.keys.presence('mainly'),
      'waiter',
      JSON.stringify({ conn_id: 'c-mainly-waiter', edge_id: 'edge-here', type: 'sub', client_id: 'waiter' }),
    );
    const event = notify('mainly', 'pos-a', 'main');
    const fromMain = await world.log.appendNotify(event, { tokenId: 'pos-a-t1', type: 'main' });
    const broadcast = await waitFor(() => heard.shift(), { what: 'the broadcast' });
    expect(decodeEdgeCommand(broadcast.text)).toEqual({
      kind: 'deliver',
      conn_id: 'c-mainly-waiter',
      frames: [JSON.stringify(broadcastFrameOf(event))],
    });
    expect((await entryFields(world.ctx, 'mainly', fromMain.eventId)).u).toBe('');

    const first = await world.log.appendNotify(notify('mainly', 'waiter', 'sub'), {
      tokenId: 'waiter-t1',
      type: 'sub',
    });
    await waitFor(() => (heard.length >= 2 ? heard.splice(0) : null), {
      what: 'the first pushes, one per main',
    });
    const again = await world.log.appendNotify(notify('mainly', 'waiter', 'sub'), {
      tokenId: 'waiter-t1',
      type: 'sub',
    });
    expect(again).toMatchObject({ eventId: first.eventId, isDuplicate: true });
    // A ping after the repeat: anything the repeat had published would arrive before it.
    await world.ctx.redis.spublish(world.ctx.keys.edgeChannelOfShop('mainly', 'edge-here'), 'ping');
    expect((await waitFor(() => heard.shift(), { what: 'the ping' })).text).toBe('ping');
    expect(await world.ctx.redis.hget(world.ctx.keys.attempts('mainly'), `${first.eventId}.pos-b`)).toBe('1');
  });

  it('files, pushes and counts every main of a shop larger than one of its writes (600 mains, 300 online)', async () => {
    // The script writes the inbox, its order and the attempts in one call per key, 512 arguments at a time.
    const devices: Record<string, 'main' | 'sub'> = { waiter: 'sub' };
    const mains = Array.from({ length: 600 }, (_, i) => `pos-${String(i).padStart(3, '0')}`);
    for (const main of mains) devices[main] = 'main';
    await registerAll(world.log, 'large', devices);
    const online = mains.filter((_, i) => i % 2 === 1);
    for (const main of online) await connect('large', main, 'edge-here');
    const outcome = await world.log.appendNotify(notify('large', 'waiter', 'sub'), {
      tokenId: 'waiter-t1',
      type: 'sub',
    });

    const deliveries = await waitFor(() => (heard.length >= online.length ? heard.splice(0) : null), {
      what: 'a push to each online main',
    });
    const connections = deliveries
      .map((d) => decodeEdgeCommand(d.text))
      .map((c) => (c && 'conn_id' in c ? c.conn_id : ''));
    expect(connections).toEqual(online.map((main) => `c-large-${main}`));
    const inbox = await world.ctx.redis.hkeys(world.ctx.keys.inbox('large'));
    expect(inbox.sort()).toEqual(mains.map((main) => `${outcome.eventId}.${main}`));
    expect(await world.ctx.redis.zcard(world.ctx.keys.inboxOrder('large'))).toBe(mains.length);
    const attempts = await world.ctx.redis.hgetall(world.ctx.keys.attempts('large'));
    expect(attempts).toEqual(Object.fromEntries(online.map((main) => [`${outcome.eventId}.${main}`, '1'])));
    expect((await entryFields(world.ctx, 'large', outcome.eventId)).u).toBe('');
  });
});
