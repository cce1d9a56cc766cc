// What the api tests share besides the api itself (in test/support/api.ts): the shop's events as the stream holds them.
import { type BrokerEvent, decodeEntry } from '#events';
import type { TestContext } from '#test-support';

// Where the api itself was started from before it moved to test/support; e2e tests still import it from here.
export { type Api, startTestApi } from '#test-support';

/** The shop's events as recorded in its stream, in log order. */
export async function eventsOf(ctx: TestContext, shopId: string): Promise<BrokerEvent[]> {
  const entries = await ctx.redis.xrange(ctx.keys.streamOfShop(shopId), '-', '+');
  const events: BrokerEvent[] = [];
  for (const [, fields] of entries) {
    const decoded = decodeEntry(fields);
    if (!decoded.ok) throw new Error(`undecodable entry: ${decoded.reason}`);
    if (decoded.event.shop_id === shopId) events.push(decoded.event);
  }
  return events;
}
