// Listening on an edge's channels as the edge does (services/edge/src/subscription.ts): SSUBSCRIBE to its channel of
// every shard, on one Redis or on a Cluster (there ioredis subscribes on the master of each channel's slot).
import { Cluster } from 'ioredis';
import type { Keys } from '#events';
import type { RedisClient } from '#runtime';

export async function listenAsEdge(
  ctx: { redis: RedisClient; keys: Keys },
  edgeId: string,
  heard: (channel: string, text: string) => void,
): Promise<{ close(): void }> {
  const subscriber =
    ctx.redis instanceof Cluster
      ? ctx.redis.duplicate(undefined, { shardedSubscribers: true })
      : ctx.redis.duplicate();
  subscriber.on('smessage', heard);
  // One call per channel: on a Cluster one SSUBSCRIBE takes the channels of one slot.
  await Promise.all(ctx.keys.edgeChannels(edgeId).map((channel) => subscriber.ssubscribe(channel)));
  return { close: () => subscriber.disconnect() };
}
