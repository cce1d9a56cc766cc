// Pushes that reached an edge which no longer held the connection (SPEC §3: "the edge no longer held the
// connection"). The edge lists them here, one list for the broker; a dispatcher moves them into the retry queue.
// Rare by design: a closed connection's device gets the message with its next login's backlog anyway, and an
// edge routes to a connection from the moment its login starts.
import type { Keys } from '#events';
import type { RedisClient } from '#runtime';

export interface Bounce {
  shop: string;
  /** Message id (`<event id>.<client id>`). */
  id: string;
  /** The attempt the bounced push carried. */
  attempt: number;
}

export async function recordBounces(redis: RedisClient, keys: Keys, bounces: readonly Bounce[]) {
  if (bounces.length === 0) return;
  await redis.rpush(keys.bounced(), ...bounces.map((bounce) => JSON.stringify(bounce)));
}

/** Takes up to `count` bounces off the list; malformed entries are dropped (they come from inside the broker). */
export async function takeBounces(redis: RedisClient, keys: Keys, count: number): Promise<Bounce[]> {
  const taken = (await redis.lpop(keys.bounced(), count)) ?? [];
  const bounces: Bounce[] = [];
  for (const text of taken) {
    try {
      const value = JSON.parse(text) as Partial<Bounce>;
      if (typeof value.shop === 'string' && typeof value.id === 'string' && typeof value.attempt === 'number')
        bounces.push({ shop: value.shop, id: value.id, attempt: value.attempt });
    } catch {
      // dropped: see above
    }
  }
  return bounces;
}
