// The ack script on a real Redis (SPEC §5.3): an ack removes the message from the inbox and appends one
// MessageDelivered naming exactly the messages it delivered; a repeated or late ack changes nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeEntry, type EventOf, messageIdOf, newEventId } from '#events';
import { eventLogOnRedis, notifyRequested, readLog, registerAll } from '#test-support';

const SHOP = 'shop-ack';

describe('when a device acks its messages', () => {
  const world = eventLogOnRedis();
  let firstId = '';
  let secondId = '';
  let thirdId = '';

  beforeAll(async () => {
    await registerAll(world.log, SHOP, { 'pos-1': 'main', 'pos-2': 'main', waiter: 'sub' });
    const notify = async (reqId: string) =>
      (
        await world.log.appendNotify(notifyRequested(SHOP, { req_id: reqId }), {
          tokenId: 'waiter-t1',
          type: 'sub',
        })
      ).eventId;
    firstId = await notify('r1');
    secondId = await notify('r2');
    thirdId = await notify('r3');
  });

  const ack = (clientId: string, ids: string[]) =>
    world.log.ack(SHOP, clientId, 'edge:e1', ids, newEventId(), Date.now());
  const delivered = async () =>
    (await readLog(world.ctx, 'MessageDelivered')) as Array<EventOf<'MessageDelivered'>>;

  it('appends one MessageDelivered when the same message is acked twice', async () => {
    const id = messageIdOf(firstId, 'pos-1');
    expect(await ack('pos-1', [id])).toBe(1);
    expect(await ack('pos-1', [id])).toBe(0);
    const events = await delivered();
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ client_id: 'pos-1', ids: [id] });
    expect(await world.ctx.redis.hexists(world.ctx.keys.inbox(SHOP), id)).toBe(0);
  });

  it('appends one MessageDelivered when two acks of the same message race', async () => {
    const id = messageIdOf(firstId, 'pos-2');
    const counts = await Promise.all([ack('pos-2', [id]), ack('pos-2', [id]), ack('pos-2', [id])]);
    expect(counts.sort()).toEqual([0, 0, 1]);
    const forId = (await delivered()).filter((event) => event.data.ids.includes(id));
    expect(forId).toHaveLength(1);
  });

  it('names only the messages still undelivered when an ack mixes old and new ids', async () => {
    const old = messageIdOf(firstId, 'pos-1');
    const fresh = messageIdOf(secondId, 'pos-1');
    expect(await ack('pos-1', [old, fresh, old])).toBe(1);
    const last = (await delivered()).at(-1);
    expect(last?.data.ids).toEqual([fresh]);
    expect(Object.keys(last?.data.attempts ?? {})).toEqual([fresh]);
  });

  it('appends nothing for an id that was never sent', async () => {
    const before = await world.ctx.redis.xlen(world.ctx.keys.streamOfShop(SHOP));
    expect(await ack('pos-2', [messageIdOf(newEventId(), 'pos-2')])).toBe(0);
    expect(await world.ctx.redis.xlen(world.ctx.keys.streamOfShop(SHOP))).toBe(before);
  });

  it('writes an event every consumer accepts, with the attempts counted so far', async () => {
    const id = messageIdOf(secondId, 'pos-2');
    await world.ctx.redis.hset(world.ctx.keys.attempts(SHOP), id, 3);
    expect(await ack('pos-2', [id])).toBe(1);
    const entries = await world.ctx.redis.xrevrange(world.ctx.keys.streamOfShop(SHOP), '+', '-', 'COUNT', 1);
    const decoded = decodeEntry(entries[0]![1]);
    if (!decoded.ok) throw new Error(`the ack script wrote an invalid event: ${decoded.reason}`);
    expect(decoded.event).toMatchObject({
      type: 'MessageDelivered',
      shop_id: SHOP,
      source: 'edge:e1',
      data: { client_id: 'pos-2', ids: [id], attempts: { [id]: 3 } },
    });
    expect(await world.ctx.redis.hexists(world.ctx.keys.attempts(SHOP), id)).toBe(0);
  });

  it('says how the delivery is known: an ack by default, a socket write when the edge says so', async () => {
    const acked = messageIdOf(thirdId, 'pos-1');
    const written = messageIdOf(thirdId, 'pos-2');
    await ack('pos-1', [acked]);
    await world.log.ack(SHOP, 'pos-2', 'edge:e1', [written], newEventId(), Date.now(), 'socket-write');
    const events = await delivered();
    expect(events.find((e) => e.data.ids.includes(acked))?.data.via).toBe('ack');
    expect(events.find((e) => e.data.ids.includes(written))?.data.via).toBe('socket-write');
  });

  it('empties the inbox once every recipient has acked', async () => {
    expect(await world.ctx.redis.hlen(world.ctx.keys.inbox(SHOP))).toBe(0);
    expect(await world.ctx.redis.zcard(world.ctx.keys.inboxOrder(SHOP))).toBe(0);
  });
});
