// Reading what the log holds, for assertions.
import { type BrokerEvent, decodeEntry, type EventType } from '#events';
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
