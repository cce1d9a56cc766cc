// The log on a real Redis: what EventLog.append writes is what XRANGE reads back, in the shop's shard stream, in
// append order.
import { describe, expect, it } from 'vitest';
import {
  type BrokerEvent,
  compareStreamIds,
  createEvent,
  decodeEntry,
  type EventOf,
  messageIdOf,
} from '#events';
import { eventLogOnRedis } from '#test-support';

function notifyOf(shopId: string, n: number): EventOf<'NotifyRequested'> {
  return createEvent({
    type: 'NotifyRequested',
    shopId,
    source: 'edge:e1',
    data: {
      req_id: `r${n}`,
      from_client_id: 'waiter',
      from_type: 'sub',
      audience: 'mains',
      recipients: ['pos-1', 'pos-2'],
      table_id: n % 2 === 0 ? n : `桌${n}`,
      type: 'add_dish',
      status: n,
      data: { dish: '宫保鸡丁', qty: n, note: { spicy: true, extras: ['花生', null, 1.5] } },
      user_info: { waiter: '小王', emoji: '🍜' },
    },
  });
}

describe('when events are appended to the log', () => {
  const world = eventLogOnRedis();

  async function readShard(shopId: string): Promise<Array<{ streamId: string; event: BrokerEvent }>> {
    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop(shopId), '-', '+');
    return entries.map(([streamId, fields]) => {
      const decoded = decodeEntry(fields);
      if (!decoded.ok) throw new Error(`entry ${streamId} does not decode: ${decoded.reason}`);
      return { streamId, event: decoded.event };
    });
  }

  it('reads back every event exactly as appended, with its stream id', async () => {
    const events = [
      createEvent({
        type: 'DeviceRegistered',
        shopId: 'shop-a',
        source: 'api',
        data: { client_id: 'pos-1', type: 'main', token_id: 't1' },
      }),
      notifyOf('shop-a', 1),
      notifyOf('shop-a', 2),
      createEvent({
        type: 'MessageHandled',
        shopId: 'shop-a',
        source: 'api',
        data: { id: messageIdOf('01JH0000000000000000000000', 'pos-1'), status: 2 },
      }),
    ];
    const streamIds: string[] = [];
    for (const event of events) streamIds.push(await world.log.append(event));

    const read = await readShard('shop-a');
    expect(read).toEqual(events.map((event, i) => ({ streamId: streamIds[i], event })));
  });

  it('writes the type beside the body, for cheap filtering', async () => {
    const event = notifyOf('shop-t', 1);
    const streamId = await world.log.append(event);
    const [entry] = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop('shop-t'), streamId, streamId);
    expect(entry?.[1].slice(0, 3)).toEqual(['t', 'NotifyRequested', 'e']);
  });

  it("keeps one shop's events in append order, even when appended concurrently with other shops'", async () => {
    const shops = ['shop-x', 'shop-y', 'shop-z', 'shop-w'];
    const perShop = 50;
    for (let n = 0; n < perShop; n++) {
      await Promise.all(shops.map((shop) => world.log.append(notifyOf(shop, n))));
    }
    for (const shop of shops) {
      const statuses = (await readShard(shop))
        .map(({ event }) => event)
        .filter((event) => event.shop_id === shop && event.type === 'NotifyRequested')
        .map((event) => (event.type === 'NotifyRequested' ? event.data.status : -1));
      expect(statuses).toEqual(Array.from({ length: perShop }, (_, n) => n));
    }
  });

  it('puts a shop only in its own shard stream', async () => {
    const streamId = await world.log.append(notifyOf('shop-only', 1));
    for (const shard of world.ctx.keys.allShards()) {
      const found = await world.ctx.redis.xrange(world.ctx.keys.stream(shard), streamId, streamId);
      const ours = found.filter(([, fields]) => fields.includes('e') && fields.join().includes('shop-only'));
      expect(ours.length, `shard ${shard}`).toBe(shard === world.ctx.keys.shardOf('shop-only') ? 1 : 0);
    }
  });

  it('answers stream ids that grow with each append', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push(await world.log.append(notifyOf('shop-order', n)));
    for (let i = 1; i < ids.length; i++) expect(compareStreamIds(ids[i]!, ids[i - 1]!)).toBeGreaterThan(0);
  });
});
