// Issue 22.8: a ConnectionClosed retried after a lost reply (the first attempt was applied, its answer never came)
// or recorded again by the dead-edge sweep after the edge itself, is appended once. Real Redis.
import { describe, expect, it } from 'vitest';
import { createEvent, decodeEntry } from '#events';
import { eventLogOnRedis } from '#test-support';

describe('when a connection close is recorded more than once', () => {
  const world = eventLogOnRedis();

  const closeOf = (connId: string, source: 'edge:e1' | 'dispatcher:d1' = 'edge:e1') =>
    createEvent({
      type: 'ConnectionClosed',
      shopId: 'close-once',
      source,
      data: { client_id: 'pos-1', conn_id: connId, edge_id: 'e1', reason: 'dropped', close_code: 1006 },
    });

  async function closesOf(connId: string): Promise<number> {
    const entries = await world.ctx.redis.xrange(world.ctx.keys.streamOfShop('close-once'), '-', '+');
    return entries
      .map(([, fields]) => decodeEntry(fields))
      .filter((d) => d.ok && d.event.type === 'ConnectionClosed' && d.event.data.conn_id === connId).length;
  }

  it('appends it once, whether the same event is retried or another one names the connection', async () => {
    const event = closeOf('c_1');
    expect(await world.log.recordClose(event)).toBe(true);
    expect(await world.log.recordClose(event)).toBe(false); // the retry after a lost reply
    expect(await world.log.recordClose(closeOf('c_1', 'dispatcher:d1'))).toBe(false); // the dead-edge sweep
    expect(await closesOf('c_1')).toBe(1);
    expect(await world.log.recordClose(closeOf('c_2'))).toBe(true); // another connection is its own
    expect(await closesOf('c_2')).toBe(1);
  });
});
