// Listening on an edge's channels as the edge does (services/edge/src/subscription.ts): SSUBSCRIBE to its channel of
// every shard, on one Redis or on a Cluster (there ioredis subscribes on the master of each channel's slot).
import { duplicateRedis } from '#runtime';
import type { TestContext } from './context';

export async function listenAsEdge(
  ctx: TestContext,
  edgeId: string,
  heard: (channel: string, text: string) => void,
): Promise<{ close(): void }> {
  const subscriber = duplicateRedis(ctx.redis, ctx.log, ctx.config.redis, `test-listen-${edgeId}`, {
    shardedSubscriber: true,
  });
  subscriber.on('smessage', heard);
  // One call per channel: on a Cluster one SSUBSCRIBE takes the channels of one slot.
  await Promise.all(ctx.keys.edgeChannels(edgeId).map((channel) => subscriber.ssubscribe(channel)));
  return { close: () => subscriber.disconnect() };
}
