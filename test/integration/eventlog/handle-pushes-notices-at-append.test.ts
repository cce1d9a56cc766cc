// SPEC §10 with issue 18's pushes: the handle script pushes each `handled` notice to its main's connection in the
// same step that files it (handle-7.lua), with the frame a login backlog would write, counted as its first push;
// the mains whose push reached no edge are named in the MessageHandled entry's `u` field for the dispatcher to
// retry. Real Redis, real PostgreSQL and persister (handle reads which copies exist from the projection).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameOf, handleRequest, type Presence } from '#eventlog';
import { createEvent, decodeEdgeCommand, noticeIdOf } from '#events';
import { listenAsEdge, registerAll, waitFor } from '#test-support';
import { handlingWorld } from './handling-fixture';

describe('when a request is handled', () => {
  const world = handlingWorld();
  let subscriber: { close(): void } | undefined;
  const heard: string[] = [];

  beforeAll(async () => {
    subscriber = await listenAsEdge(world.ctx, 'edge-here', (_channel, text) => heard.push(text));
  });
  afterAll(() => subscriber?.close());

  const connect = (shop: string, client: string, edge: string) => {
    const presence: Presence = {
      conn_id: `c-${client}`,
      edge_id: edge,
      shop_id: shop,
      client_id: client,
      type: 'main',
      connected_at: new Date().toISOString(),
      remote_addr: '127.0.0.1',
    };
    return world.ctx.redis.hset(world.ctx.keys.presence(shop), client, JSON.stringify(presence));
  };

  it("pushes the notice to each other main's connection at once, and names those no edge received", async () => {
    const shop = 'handled-here';
    await registerAll(world.log, shop, { m0: 'main', m1: 'main', m2: 'main', w: 'sub' });
    await connect(shop, 'm0', 'edge-here');
    await connect(shop, 'm1', 'edge-here');
    await connect(shop, 'm2', 'edge-nobody-runs');
    const { eventId } = await world.log.appendNotify(
      createEvent({
        type: 'NotifyRequested',
        shopId: shop,
        source: 'edge:e1',
        data: {
          req_id: 'r',
          from_client_id: 'w',
          from_type: 'sub',
          audience: 'mains',
          recipients: [],
          table_id: 5,
          type: 'return_dish',
          status: 0,
          data: {},
          user_info: {},
        },
      }),
      { tokenId: 'w-t1', type: 'sub' },
    );
    await waitFor(() => heard.length >= 2, { what: "the message's pushes to m0 and m1" });
    heard.splice(0);

    const outcome = await handleRequest(world.deps, {
      shopId: shop,
      messageId: `${eventId}.m0`,
      status: 1,
      by: { kind: 'device', client_id: 'm0' },
      source: 'edge:e1',
      nowMs: Date.now(),
    });
    if (outcome.kind !== 'handled') throw new Error(`not handled: ${outcome.kind}`);

    const copyId = `${eventId}.m1`;
    const pushed = decodeEdgeCommand(await waitFor(() => heard.shift(), { what: "m1's notice" }));
    const notice = { event_id: eventId, status: 1, handled_by: { kind: 'device', client_id: 'm0' } };
    expect(pushed).toMatchObject({ kind: 'deliver', conn_id: 'c-m1' });
    const frames = (pushed as { frames: string[] }).frames;
    expect(frames).toHaveLength(1);
    const frame = JSON.parse(frames[0]!) as { handled_at: string };
    expect(frame).toMatchObject({ op: 'handled', id: copyId, ...notice });
    // The frame a login backlog would write for the same notice.
    expect(frames[0]).toBe(
      frameOf(
        {
          kind: 'notice',
          id: noticeIdOf(copyId),
          copyId,
          notice: {
            ...notice,
            handled_by: { kind: 'device', client_id: 'm0' },
            handled_at: frame.handled_at,
          },
        },
        1,
      ),
    );
    expect(await world.ctx.redis.hget(world.ctx.keys.attempts(shop), noticeIdOf(copyId))).toBe('1');
    expect(await world.ctx.redis.hget(world.ctx.keys.attempts(shop), noticeIdOf(`${eventId}.m2`))).toBe('1');
    // Nothing for the handler itself.
    expect(heard).toEqual([]);

    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop(shop), '-', '+');
    const [, fields] = entries.find(([, f]) => f.includes('MessageHandled'))!;
    expect(fields[fields.indexOf('u') + 1]).toBe('m2');
  });
});
