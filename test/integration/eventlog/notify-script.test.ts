// The notify script on a real Redis (SPEC §5.2, §3): recipients are the mains registered at that point of the
// shop's log, fixed atomically with the append; a repeated req_id answers the first event and appends nothing; a
// sub's notify to a shop without mains is refused and leaves no trace.
import { describe, expect, it } from 'vitest';
import {
  BrokerError,
  createEvent,
  type DeviceType,
  decodeEntry,
  type EventOf,
  messageIdOf,
  newEventId,
} from '#events';
import { deviceRegistered, eventLogOnRedis } from '#test-support';

describe('when a device notifies its shop', () => {
  const world = eventLogOnRedis();
  let reqs = 0;

  const register = (shop: string, client_id: string, type: DeviceType) =>
    world.log.register(deviceRegistered(shop, client_id, type));
  const revoke = (shop: string, client_id: string) =>
    world.log.revoke(
      createEvent({ type: 'DeviceRevoked', shopId: shop, source: 'api', data: { client_id } }),
    );

  function notifyEvent(shop: string, from: string, fromType: 'main' | 'sub', reqId: string) {
    return createEvent({
      type: 'NotifyRequested',
      shopId: shop,
      source: 'edge:e1',
      data: {
        req_id: reqId,
        from_client_id: from,
        from_type: fromType,
        audience: fromType === 'sub' ? 'mains' : 'subs',
        recipients: [], // filled in by the script from the registry
        table_id: 12,
        type: 'add_dish',
        status: 0,
        data: { dish: '宫保鸡丁' },
        user_info: { waiter: '小王' },
      },
    });
  }
  const notify = (shop: string, from: string, fromType: 'main' | 'sub' = 'sub', reqId = `req-${++reqs}`) =>
    world.log.appendNotify(notifyEvent(shop, from, fromType, reqId), {
      tokenId: `${from}-t1`,
      type: fromType,
    });

  async function streamLength(shop: string): Promise<number> {
    return world.ctx.redis.xlen(world.ctx.keys.streamOfShop(shop));
  }

  /** The NotifyRequested the log holds for an event id, decoded and validated like any consumer would. */
  async function recorded(shop: string, eventId: string): Promise<EventOf<'NotifyRequested'>> {
    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop(shop), '-', '+');
    for (const [, fields] of entries) {
      const decoded = decodeEntry(fields);
      if (!decoded.ok) throw new Error(`invalid entry in the log: ${decoded.reason}`);
      if (decoded.event.id === eventId && decoded.event.type === 'NotifyRequested') return decoded.event;
    }
    throw new Error(`no NotifyRequested ${eventId} in the log`);
  }

  it('addresses the registered mains, sorted, and files one inbox message each', async () => {
    await register('shop-1', 'pos-b', 'main');
    await register('shop-1', 'pos-a', 'main');
    await register('shop-1', 'waiter', 'sub');

    const outcome = await notify('shop-1', 'waiter');
    expect(outcome.isDuplicate).toBe(false);
    const event = await recorded('shop-1', outcome.eventId);
    expect(event.data.recipients).toEqual(['pos-a', 'pos-b']);
    expect(event.data.data).toEqual({ dish: '宫保鸡丁' });

    const inbox = await world.ctx.redis.hkeys(world.ctx.keys.inbox('shop-1'));
    expect(inbox.sort()).toEqual([
      messageIdOf(outcome.eventId, 'pos-a'),
      messageIdOf(outcome.eventId, 'pos-b'),
    ]);
  });

  it('leaves a revoked main out of the next notify', async () => {
    await revoke('shop-1', 'pos-b');
    const outcome = await notify('shop-1', 'waiter');
    expect((await recorded('shop-1', outcome.eventId)).data.recipients).toEqual(['pos-a']);
  });

  it('answers a repeated req_id with the first event id and appends nothing', async () => {
    const first = await notify('shop-1', 'waiter', 'sub', 'same-req');
    const length = await streamLength('shop-1');
    const again = await notify('shop-1', 'waiter', 'sub', 'same-req');
    expect(again).toEqual({ eventId: first.eventId, isDuplicate: true });
    expect(await streamLength('shop-1')).toBe(length);
  });

  it('keeps the req_ids of two senders apart', async () => {
    await register('shop-1', 'waiter-2', 'sub');
    const one = await notify('shop-1', 'waiter', 'sub', 'shared-req');
    const two = await notify('shop-1', 'waiter-2', 'sub', 'shared-req');
    expect(two.isDuplicate).toBe(false);
    expect(two.eventId).not.toBe(one.eventId);
  });

  it('refuses a sub whose shop has no main with NO_MAIN_DEVICE, appending nothing', async () => {
    await register('shop-2', 'waiter', 'sub');
    const length = await streamLength('shop-2');
    const refusal = await notify('shop-2', 'waiter', 'sub', 'lonely').catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(BrokerError);
    expect((refusal as BrokerError).code).toBe('NO_MAIN_DEVICE');
    expect((refusal as BrokerError).message).toBe('shop has no registered main device');
    expect(await streamLength('shop-2')).toBe(length);
  });

  it('accepts the same req_id once a main is registered (a refusal is not remembered)', async () => {
    await register('shop-2', 'pos-1', 'main');
    const outcome = await notify('shop-2', 'waiter', 'sub', 'lonely');
    expect(outcome.isDuplicate).toBe(false);
    expect((await recorded('shop-2', outcome.eventId)).data.recipients).toEqual(['pos-1']);
  });

  it('refuses a sub again once its shop has lost every main', async () => {
    await revoke('shop-2', 'pos-1');
    await expect(notify('shop-2', 'waiter')).rejects.toMatchObject({ code: 'NO_MAIN_DEVICE' });
  });

  it("appends a main's broadcast with no recipients and no inbox message", async () => {
    await register('shop-3', 'pos-1', 'main');
    const outcome = await notify('shop-3', 'pos-1', 'main');
    const event = await recorded('shop-3', outcome.eventId);
    expect(event.data.audience).toBe('subs');
    expect(event.data.recipients).toEqual([]);
    expect(await world.ctx.redis.hlen(world.ctx.keys.inbox('shop-3'))).toBe(0);
  });

  it('refuses a revoked sender and a stale token', async () => {
    await register('shop-4', 'pos-1', 'main');
    await register('shop-4', 'waiter', 'sub');
    const stale = world.log.appendNotify(notifyEvent('shop-4', 'waiter', 'sub', 'r-stale'), {
      tokenId: 'an-older-token',
      type: 'sub',
    });
    await expect(stale).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await revoke('shop-4', 'waiter');
    await expect(notify('shop-4', 'waiter')).rejects.toMatchObject({ code: 'DEVICE_REVOKED' });
  });

  it('decides recipients atomically with concurrent revokes: each notify names exactly the mains of its moment', async () => {
    for (let i = 0; i < 10; i++) await register('shop-5', `pos-${i}`, 'main');
    await register('shop-5', 'waiter', 'sub');
    // Issued alternately in one tick, so notifies and revokes interleave on the wire.
    const notifies: Array<ReturnType<typeof notify>> = [];
    const revokes: Array<ReturnType<typeof revoke>> = [];
    for (let i = 0; i < 10; i++) {
      notifies.push(notify('shop-5', 'waiter'));
      revokes.push(revoke('shop-5', `pos-${i}`));
    }
    const settled = await Promise.allSettled(notifies);
    await Promise.all(revokes);
    const appended = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.eventId] : []));
    const refusals = settled.flatMap((s) =>
      s.status === 'rejected' ? [(s.reason as BrokerError).code] : [],
    );
    expect(refusals.every((code) => code === 'NO_MAIN_DEVICE')).toBe(true);
    expect(appended.length + refusals.length).toBe(10);

    // Fold the log in order: every notify's recipients must be the mains active just before it.
    const active = new Set<string>();
    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop('shop-5'), '-', '+');
    const seen: string[] = [];
    for (const [, fields] of entries) {
      const decoded = decodeEntry(fields);
      if (!decoded.ok || decoded.event.shop_id !== 'shop-5') continue;
      const event = decoded.event;
      if (event.type === 'DeviceRegistered' && event.data.type === 'main') active.add(event.data.client_id);
      if (event.type === 'DeviceRevoked') active.delete(event.data.client_id);
      if (event.type === 'NotifyRequested') {
        seen.push(event.id);
        expect(event.data.recipients).toEqual([...active].sort());
      }
    }
    expect(seen.sort()).toEqual(appended.sort());
  });

  it('refuses a notify from a device of another shop', async () => {
    await register('shop-6', 'pos-1', 'main');
    const event = notifyEvent('shop-6', 'waiter-of-shop-1', 'sub', newEventId());
    await expect(world.log.appendNotify(event, { tokenId: '', type: 'sub' })).rejects.toMatchObject({
      code: 'DEVICE_REVOKED',
    });
  });
});
