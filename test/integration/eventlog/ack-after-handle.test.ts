// SPEC §5.3 and §10: a main that acks its copy while another main (on another edge) or the back office handles the
// request has received the message, and the log says so once. The handle takes the copy out of the inbox and files
// a `handled` notice; the ack, a moment behind it, still records MessageDelivered for that copy (it used to find
// nothing, and the copy read handled but never delivered). A repeat of the ack, an ack after the notice's, and an
// ack of a copy that was never written record nothing. Real Redis, real PostgreSQL and persister.
import { beforeAll, describe, expect, it } from 'vitest';
import { ackNotices, FIRST_PUSH_LIMIT, handleRequest, Inbox } from '#eventlog';
import { decodeEntry, type EventOf, newEventId } from '#events';
import { notifyRequested, registerAll } from '#test-support';
import { handlingWorld } from './handling-fixture';

describe('when a main acks its copy just after the request was handled elsewhere', () => {
  const world = handlingWorld();
  let inbox: Inbox;

  beforeAll(() => {
    inbox = new Inbox(world.ctx.redis, world.ctx.keys);
  });

  /** A shop of mains m0, m1, m2 and a waiter, with one notify; m1's and m2's copies counted as written. */
  async function requestIn(shop: string): Promise<string> {
    await registerAll(world.log, shop, { m0: 'main', m1: 'main', m2: 'main', waiter: 'sub' });
    const { eventId } = await world.log.appendNotify(notifyRequested(shop, { req_id: 'r' }), {
      tokenId: 'waiter-t1',
      type: 'sub',
    });
    const pushes = await inbox.countPushes(
      shop,
      ['m1', 'm2'].map((main) => ({ id: `${eventId}.${main}`, limit: FIRST_PUSH_LIMIT })),
    );
    expect(pushes).toEqual([1, 1]);
    await world.persister.whenCaughtUp();
    const handled = await handleRequest(world.deps, {
      shopId: shop,
      messageId: `${eventId}.m0`,
      status: 1,
      by: { kind: 'api' },
      source: 'api',
      nowMs: Date.now(),
    });
    expect(handled.kind).toBe('handled');
    return eventId;
  }

  const ack = (shop: string, client: string, id: string) =>
    world.log.ack(shop, client, 'edge:e2', [id], newEventId(), Date.now());

  async function deliveries(shop: string): Promise<Array<EventOf<'MessageDelivered'>>> {
    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop(shop), '-', '+');
    return entries.flatMap(([, fields]) => {
      const decoded = decodeEntry(fields);
      return decoded.ok && decoded.event.type === 'MessageDelivered' ? [decoded.event] : [];
    });
  }

  it('records the delivery of a written copy once, and the projection keeps it handled and delivered', async () => {
    const shop = 'late-ack';
    const eventId = await requestIn(shop);
    const copy = `${eventId}.m1`;

    expect(await ack(shop, 'm1', copy)).toBe(1);
    expect(await ack(shop, 'm1', copy)).toBe(0);
    const delivered = await deliveries(shop);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.data).toMatchObject({
      client_id: 'm1',
      via: 'ack',
      ids: [copy],
      attempts: { [copy]: 1 },
    });

    // Its notice is still pending: the device has not seen it yet.
    expect(await ackNotices(world.ctx.redis, world.ctx.keys, shop, 'm1', [copy])).toBe(1);
    expect(await world.ctx.redis.hlen(world.ctx.keys.attempts(shop))).toBe(1); // m2's copy, until m2 acks its notice

    await world.persister.whenCaughtUp();
    const { rows } = await world.pool.query(
      'SELECT id, state, status, delivered_at, handled_by FROM messages WHERE event_id = $1 ORDER BY id',
      [eventId],
    );
    expect(rows.map((row) => [row.id, row.state, row.status, row.delivered_at !== null])).toEqual([
      [`${eventId}.m0`, 'handled', 1, false],
      [copy, 'handled', 1, true],
      [`${eventId}.m2`, 'handled', 1, false],
    ]);
  });

  it("records nothing for an ack after the copy's notice was acked, or for a copy never written", async () => {
    const shop = 'late-ack-after-notice';
    const eventId = await requestIn(shop);

    expect(await ackNotices(world.ctx.redis, world.ctx.keys, shop, 'm2', [`${eventId}.m2`])).toBe(1);
    expect(await ack(shop, 'm2', `${eventId}.m2`)).toBe(0);
    // m0's copy was never written: it was dropped, handled without delivery.
    expect(await ack(shop, 'm0', `${eventId}.m0`)).toBe(0);
    expect(await deliveries(shop)).toEqual([]);
    // Left: the count m1's copy keeps until m1 acks its notice (no notice was pushed: no main is connected).
    expect(await world.ctx.redis.hkeys(world.ctx.keys.attempts(shop))).toEqual([`${eventId}.m1`]);
  });
});
