// The dispatcher: consumes the log in its own group and pushes each message to its recipient's connection, on
// whichever edge it is; a push that could not reach a socket is retried through BullMQ (SPEC §3).
import { hostname } from 'node:os';
import { EventLog, Inbox, PresenceBook, ShardConsumer, takeBounces } from '#eventlog';
import { createEvent, Keys, newEventId } from '#events';
import {
  type Config,
  checkRedis,
  closeRedis,
  closeServer,
  createRedis,
  type Logger,
  once,
  type ReadinessProbe,
  readinessOf,
  runSteps,
  type ServiceHandle,
  serveHealth,
  whenRedisReady,
} from '#runtime';
import { dispatchBatch } from './consumer';
import { sweepDeadEdges } from './edges';
import { Retries } from './retries';
import { ROUTED_TYPES } from './routing';

export { retryDelayMs } from './retries';
export { stepsOf } from './routing';

export interface DispatcherHandle extends ServiceHandle {
  readonly id: string;
  readonly readiness: ReadinessProbe;
  /** The bound health port, or null when the caller serves health. */
  readonly port: number | null;
  whenCaughtUp(timeoutMs?: number): Promise<void>;
  retryDepth(): Promise<number>;
}

export interface DispatcherDeps {
  log: Logger;
  /** Serve /healthz, /readyz, /metrics on HEALTH_PORT (default true; `start all` serves one for everyone). */
  healthServer?: boolean;
  now?: () => number;
}

const SWEEP_EVERY_MS = 2000;
const BOUNCES_EVERY_MS = 500;
const BOUNCES_PER_ROUND = 500;

export async function start(config: Config, deps: DispatcherDeps): Promise<DispatcherHandle> {
  const id = `${hostname()}-${process.pid}-${newEventId().slice(-6)}`;
  const log = deps.log.child({ svc: 'dispatcher', dispatcher_id: id });
  const now = deps.now ?? Date.now;
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = createRedis(config.redis, log, { name: `dispatcher-${id}` });
  const bullRedis = createRedis(config.redis, log, {
    name: `dispatcher-${id}-bullmq`,
    autoPipelining: false,
  });
  await whenRedisReady(redis);
  const source = `dispatcher:${id}`;
  const eventLog = new EventLog(redis, keys);
  const inbox = new Inbox(redis, keys);
  const presence = new PresenceBook(redis, keys);
  let isDraining = false;

  const retries = new Retries(
    {
      redis,
      keys,
      inbox,
      delivery: config.delivery,
      log,
      now,
      async recordFailure(push, attempts) {
        // A notice out of retries waits for its device's next login; only a message's failure is an event.
        if (push.item.kind !== 'message') {
          log.info(
            { notice: push.item.id, attempts },
            'notice not pushed after its budget; waits for a login',
          );
          return;
        }
        const event = createEvent({
          type: 'DeliveryFailed',
          shopId: push.shop,
          source,
          nowMs: now(),
          data: { client_id: push.client, id: push.item.id, attempts },
        });
        await eventLog.append(event);
        log.info(
          { event_id: event.id, message_id: push.item.id, attempts },
          'delivery failed; message stays pending',
        );
      },
    },
    bullRedis,
  );
  retries.startWorker(bullRedis);

  const consumer = new ShardConsumer({
    redis,
    redisConfig: config.redis,
    keys,
    log,
    group: 'dispatcher',
    consumer: id,
    batch: config.consumer.batch,
    leaseMs: config.consumer.leaseMs,
    types: ROUTED_TYPES,
    readIntervalMs: config.dispatcher.readIntervalMs,
    handle: dispatchBatch({
      redis,
      keys,
      inbox,
      presence,
      retries,
      attemptBudget: config.delivery.attempts,
    }),
  });
  await consumer.start();

  let sweeping = Promise.resolve();
  const sweeper = setInterval(() => {
    sweeping = sweepDeadEdges({ redis, keys, eventLog, presence, log, source }, now()).then(
      () => undefined,
      (err: Error) => log.warn({ reason: err.message }, 'dead-edge sweep failed; next round retries'),
    );
  }, SWEEP_EVERY_MS);

  // Pushes that edges bounced (they no longer held the connection) go to the retry queue. Taken off the list
  // before they are stored in BullMQ: a dispatcher that dies in between loses those retries, and the devices get
  // the messages with their next login's backlog.
  let bouncing = Promise.resolve();
  const bouncer = setInterval(() => {
    bouncing = bouncing
      .then(async () => {
        const bounces = await takeBounces(redis, keys, BOUNCES_PER_ROUND);
        await retries.scheduleBounces(bounces);
        if (bounces.length > 0) log.info({ count: bounces.length }, 'bounced pushes scheduled for a retry');
      })
      .catch((err: Error) =>
        log.warn({ reason: err.message }, 'bounced pushes not taken; next round retries'),
      );
  }, BOUNCES_EVERY_MS);

  const readiness = readinessOf({ redis: () => checkRedis(redis) }, () => isDraining);
  const health =
    deps.healthServer === false ? null : await serveHealth('0.0.0.0', config.healthPort, readiness);
  const port = health ? ((health.address() as { port: number }).port ?? null) : null;
  log.info({ health_port: port }, 'dispatcher started');

  const drain = once(async () => {
    isDraining = true;
    clearInterval(sweeper);
    clearInterval(bouncer);
    await sweeping;
    await bouncing;
    await consumer.stop();
  });
  const stop = once(async () => {
    await drain();
    await runSteps(log, [
      ['close retries', () => retries.close()],
      ['close health', () => (health ? closeServer(health) : undefined)],
      ['close redis', () => closeRedis(redis)],
      ['close bullmq redis', () => closeRedis(bullRedis)],
    ]);
  });

  return {
    name: 'dispatcher',
    id,
    readiness,
    port,
    drain,
    stop,
    whenCaughtUp: (timeoutMs) => consumer.whenCaughtUp(timeoutMs),
    retryDepth: () => retries.depth(),
  };
}
