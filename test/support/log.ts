// Reading what the log holds, for assertions.
import { type BrokerEvent, decodeEntry, type EventOf, type EventType } from '#events';
import type { TestContext } from './context';

/** Every valid event of every shard, in stream order per shard. */
export async function readLog(ctx: TestContext, type?: EventType): Promise<BrokerEvent[]> {
  const events: BrokerEvent[] = [];
  for (const shard of ctx.keys.allShards()) {
    const entries = await ctx.redis.xrange(ctx.keys.stream(shard), '-', '+');
    for (const [, fields] of entries) {
      const decoded = decodeEntry(fields);
      if (decoded.ok && (type === undefined || decoded.event.type === type)) events.push(decoded.event);
    }
  }
  return events;
}

/** The fields of the stream entry that holds an event (`t`, `e`, and `u` where the append wrote one). */
export async function entryFields(
  ctx: TestContext,
  shopId: string,
  eventId: string,
): Promise<Record<string, string>> {
  for (const [, fields] of await ctx.redis.xrange(ctx.keys.streamOfShop(shopId), '-', '+')) {
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    if (record.e?.includes(eventId)) return record;
  }
  throw new Error(`no entry for ${eventId}`);
}

/** The shop's events in log order; throws if the stream holds an entry that fails the catalogue. */
export async function shopEvents<T extends EventType>(
  ctx: TestContext,
  shopId: string,
  type: T,
): Promise<Array<EventOf<T>>>;
export async function shopEvents(ctx: TestContext, shopId: string): Promise<BrokerEvent[]>;
export async function shopEvents(ctx: TestContext, shopId: string, type?: EventType): Promise<BrokerEvent[]> {
  const entries = await ctx.redis.xrange(ctx.keys.streamOfShop(shopId), '-', '+');
  const events: BrokerEvent[] = [];
  for (const [id, fields] of entries) {
    const decoded = decodeEntry(fields);
    if (!decoded.ok) throw new Error(`stream entry ${id} is invalid: ${decoded.reason}`);
    if (decoded.event.shop_id === shopId && (type === undefined || decoded.event.type === type))
      events.push(decoded.event);
  }
  return events;
}
