// The edge's subscription to its deliveries and commands: one sharded channel per shard (Keys.edgeChannels). A
// shard's script publishes to its channel in its own slot (SPUBLISH), and the count it gets back says whether an
// edge heard the push, on a Redis Cluster as on one Redis; a push nobody heard is retried through BullMQ (SPEC §3).
//
// Pub/sub keeps nothing for a subscriber that is away, and a connection can die holding pushes it was counted for.
// So after an interruption, once every channel is heard again, `resumed` is called and the edge pushes its
// connections' backlogs again: whatever was published meanwhile was either counted 0 (retried) or is in the inbox.
//
// "Heard again" is checked, not inferred from the client's events: the edge publishes a probe on each of its
// channels and waits to receive it. ioredis's events say when a subscriber connection was lost, but a Cluster can
// also drop a channel silently (a slot moved to another master unsubscribes it, and ioredis only learns of the new
// owner at its next slots refresh), and a re-sent SSUBSCRIBE that meets a MOVED is never answered. So the probes
// also run every CHECK_MS: a channel that nobody hears is subscribed again, and counts as an interruption.
import { delay, type Logger, type RedisClient } from '#runtime';

export interface DeliveryHandlers {
  /** A command published on one of the channels. */
  message(text: string): void;
  /** The subscription was interrupted, and every channel is heard again. */
  resumed(): void;
  /** No recovery while the edge drains: its sockets are closing anyway. */
  isDraining(): boolean;
}

export interface DeliverySubscription {
  stop(): void;
}

export interface SubscriptionTiming {
  /** How often every channel is probed. */
  checkMs: number;
  /** How long a probe may take to come back. */
  probeTimeoutMs: number;
  /** The pause between two failed confirmations. */
  retryMs: number;
}

const PROBE = 'probe ';
const TIMING: SubscriptionTiming = { checkMs: 5000, probeTimeoutMs: 2000, retryMs: 500 };

/**
 * Subscribes `subscriber` to the channels and resolves once every one is heard. `publisher` (another connection)
 * sends the probes.
 */
export async function subscribeDeliveries(
  subscriber: RedisClient,
  publisher: RedisClient,
  channels: readonly string[],
  handlers: DeliveryHandlers,
  log: Logger,
  timing: SubscriptionTiming = TIMING,
): Promise<DeliverySubscription> {
  const probes = new Map<string, () => void>();
  let nextProbe = 0;
  subscriber.on('smessage', (_channel: string, text: string) => {
    if (text.startsWith(PROBE)) return probes.get(text.slice(PROBE.length))?.();
    handlers.message(text);
  });

  // Interruptions seen and recovered from, counted: the first "interruption" is the start itself.
  let interrupted = 1;
  let recovered = 0;
  let recovering: Promise<void> | null = null;
  let isStopped = false;
  const interrupt = () => {
    interrupted += 1;
    void recover();
  };
  // A lost connection: one Redis's subscriber closes; on a Cluster a sharded subscriber's connection ends ('-node',
  // which the connections of the slots refresh raise as well), is replaced ('-subscriber', '+subscriber'), or the
  // whole client reconnects ('close').
  for (const event of ['close', '-node', '-subscriber', '+subscriber']) subscriber.on(event, interrupt);

  /** Subscribes a channel. Not awaited: on a Cluster the reply may never come (see above); the probes tell. */
  function subscribe(channel: string): void {
    subscriber
      .ssubscribe(channel)
      .catch((err: Error) => log.debug({ channel, reason: err.message }, 'ssubscribe failed; probed again'));
  }

  /** Whether this edge hears a probe published on the channel; subscribes the channel again if nobody does. */
  async function isHeard(channel: string): Promise<boolean> {
    const id = `${process.pid}.${nextProbe++}`;
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<boolean>((resolve) => {
      probes.set(id, () => resolve(true));
      timer = setTimeout(() => resolve(false), timing.probeTimeoutMs);
    });
    try {
      if (Number(await publisher.spublish(channel, PROBE + id)) === 0) {
        subscribe(channel);
        return false;
      }
      return await heard;
    } catch {
      return false; // Redis unreachable: confirmed later
    } finally {
      clearTimeout(timer);
      probes.delete(id);
    }
  }

  async function isEveryChannelHeard(): Promise<boolean> {
    return (await Promise.all(channels.map(isHeard))).every(Boolean);
  }

  /** Confirms the channels after the interruptions seen so far, then calls `resumed`; one run at a time. */
  function recover(): Promise<void> {
    recovering ??= (async () => {
      let failures = 0;
      while (recovered < interrupted && !isStopped && !handlers.isDraining()) {
        const upTo = interrupted;
        if (await isEveryChannelHeard()) {
          const isStart = recovered === 0;
          recovered = upTo;
          if (!isStart) handlers.resumed();
        } else {
          if (++failures === 1 && recovered > 0) log.warn('edge channels not heard; subscribing again');
          await delay(timing.retryMs);
        }
      }
    })().finally(() => {
      recovering = null;
      if (recovered < interrupted && !isStopped && !handlers.isDraining()) void recover(); // raised meanwhile
    });
    return recovering;
  }

  for (const channel of channels) subscribe(channel);
  await recover();

  const check = setInterval(() => {
    if (recovering !== null || isStopped || handlers.isDraining()) return;
    void isEveryChannelHeard().then((isHeardEverywhere) => {
      if (!isHeardEverywhere) interrupt();
    });
  }, timing.checkMs);
  check.unref();
  return {
    stop() {
      isStopped = true;
      clearInterval(check);
    },
  };
}
