// The edge's subscription to its deliveries and commands: one sharded channel per shard (Keys.edgeChannels). A
// shard's script publishes to its channel in its own slot (SPUBLISH), and the count it gets back says whether an
// edge heard the push, on a Redis Cluster as on one Redis; a push nobody heard is retried through BullMQ (SPEC §3).
//
// Pub/sub keeps nothing for a subscriber that is away, and a connection can die holding pushes it was counted for.
// So an interruption is reported once the channels are subscribed again (`resumed`), and the edge then pushes its
// connections' backlogs again: anything published before that was either counted 0 (retried) or is in the inbox.
import { Cluster } from 'ioredis';
import type { Logger, RedisClient } from '#runtime';

export interface DeliveryHandlers {
  /** A command published on one of the channels. */
  message(text: string): void;
  /** The subscription was interrupted and every channel is subscribed again. */
  resumed(): void;
  /** No recovery while the edge drains: its sockets are closing anyway. */
  isDraining(): boolean;
}

export async function subscribeDeliveries(
  subscriber: RedisClient,
  channels: readonly string[],
  handlers: DeliveryHandlers,
  log: Logger,
): Promise<void> {
  subscriber.on('smessage', (_channel: string, text: string) => handlers.message(text));
  // On a Cluster each channel sits in its shard's slot, and one SSUBSCRIBE takes the channels of one slot only.
  const subscribeAll = () =>
    subscriber instanceof Cluster
      ? Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)))
      : subscriber.ssubscribe(...channels);
  await subscribeAll();

  let isBroken = false;
  const resume = async () => {
    if (!isBroken || handlers.isDraining()) return;
    isBroken = false;
    try {
      // ioredis subscribes again on its own; the reply to this SSUBSCRIBE comes after that one on the same
      // connection, so from here on the channels are heard. (On a Cluster each call also lists the channel once
      // more in ioredis's resubscribe set: Redis takes a repeated SSUBSCRIBE as one.)
      await subscribeAll();
    } catch (err) {
      isBroken = true;
      return log.warn({ reason: (err as Error).message }, 'resubscribe failed; the next reconnect retries');
    }
    handlers.resumed();
  };
  if (subscriber instanceof Cluster) {
    // A sharded subscriber connection that ends is replaced by ioredis after a slots refresh ('-node', then
    // '-subscriber'), and the replacements are subscribed when it emits 'subscribersReady'.
    subscriber.on('-node', () => {
      isBroken = true;
    });
    subscriber.on('-subscriber', () => {
      isBroken = true;
    });
    subscriber.on('subscribersReady', () => void resume());
  } else {
    subscriber.on('close', () => {
      isBroken = true;
    });
    subscriber.on('ready', () => void resume());
  }
}
