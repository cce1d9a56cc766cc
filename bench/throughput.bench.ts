// Throughput: every shop's sub device keeps a fixed number of notifies in flight (closed loop), both main devices
// ack every message. Counts, over the measurement window: notifies acknowledged to the sender, messages received
// (each id once) and acked by the mains, and message rows the persister turned 'delivered' in PostgreSQL.
import type pg from 'pg';
import type { RedisClient } from '#runtime';
import { type Broker, metricOf } from './lib/broker';
import { type CpuUse, cpuBetween, cpuSnapshot, describeRedisTop } from './lib/cpu';
import { pgActivity } from './lib/pg-activity';
import type { Disruptions, LiveShop } from './lib/shops';
import { notifyInput } from './lib/shops';
import { perSecond, round } from './lib/stats';
import { sleep, waitUntil } from './lib/wait';

export interface ThroughputOptions {
  warmupMs: number;
  windowMs: number;
  inFlightPerSub: number;
  /** How long to wait for the stragglers after the window (deliveries, then projections). */
  drainTimeoutMs: number;
}

export interface ThroughputResult {
  shops: number;
  inFlightPerSub: number;
  windowS: number;
  notifiesPerS: number;
  deliveriesPerS: number;
  rowsPerS: number;
  /** Messages the dispatcher pushed again because no ack had come in time (its metric, whole scenario). */
  repushes: number;
  refused: number;
  /** Server-side closes the devices reconnected after, by close code. */
  disruptions: string;
  /** After the load stopped: until every delivery arrived, then until every delivered row was projected. */
  deliveryDrainS: number | null;
  projectionDrainS: number | null;
  cpu: CpuUse;
  /** Our database's activity in the window (pg_stat_database): transactions and rows written per second. */
  postgres: {
    commitsPerS: number;
    insertedPerS: number;
    updatedPerS: number;
    messagesHotUpdateShare: number;
  };
}

export async function deliveredRows(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM messages WHERE state = 'delivered'",
  );
  return rows[0]?.n ?? 0;
}

interface Counts {
  sent: number;
  notified: number;
  refused: number;
  delivered: number;
}

/** The closed loop: each sub keeps `inFlight` notifies outstanding while `isRunning()`; mains count messages. */
function driveShops(shops: LiveShop[], inFlight: number, isRunning: () => boolean): Counts {
  const counts: Counts = { sent: 0, notified: 0, refused: 0, delivered: 0 };
  for (const shop of shops) {
    const sendNext = () => {
      const n = ++counts.sent;
      shop.sub.notify(notifyInput(`tp-${n}`, n, performance.now())).then(
        () => {
          counts.notified += 1;
          if (isRunning()) sendNext();
        },
        () => {
          counts.refused += 1;
          if (isRunning()) sendNext();
        },
      );
    };
    for (const main of shop.mains) {
      main.removeAllListeners('message');
      main.on('message', () => {
        counts.delivered += 1;
      });
    }
    for (let i = 0; i < inFlight; i++) sendNext();
  }
  return counts;
}

/** What the system looks like at one instant: counters, delivered rows, CPU, database activity. */
async function sample(broker: Broker, counts: Counts, pool: pg.Pool, redis: RedisClient) {
  const pids = Object.fromEntries(broker.processes().map((p) => [p.name, p.pid]));
  return {
    at: performance.now(),
    counts: { ...counts },
    rows: await deliveredRows(pool),
    cpu: await cpuSnapshot(pids, redis, broker.database, pool),
    pg: await pgActivity(pool),
  };
}

export async function runThroughput(
  broker: Broker,
  shops: LiveShop[],
  disruptions: Disruptions,
  pool: pg.Pool,
  redis: RedisClient,
  options: ThroughputOptions,
): Promise<ThroughputResult> {
  const rowsAtStart = await deliveredRows(pool);
  const repushesAtStart = await metricOf(broker.dispatcher.healthUrl, 'broker_dispatcher_repushes_total');
  const disruptionsAtStart = disruptions.snapshot();
  let isRunning = true;
  const counts = driveShops(shops, options.inFlightPerSub, () => isRunning);
  await sleep(options.warmupMs);
  const first = await sample(broker, counts, pool, redis);
  await sleep(options.windowMs);
  const last = await sample(broker, counts, pool, redis);
  isRunning = false;
  const windowMs = last.at - first.at;
  const rate = (a: number, b: number) => Math.round(perSecond(b - a, windowMs));

  // Stragglers: every notify answered and delivered to both mains, then every delivered row projected.
  const mainsPerShop = shops[0]?.mains.length ?? 0;
  const hasDelivered = await waitUntil(
    () =>
      counts.notified + counts.refused >= counts.sent && counts.delivered >= counts.notified * mainsPerShop,
    options.drainTimeoutMs,
  );
  const deliveryDrainS = hasDelivered ? round((performance.now() - last.at) / 1000, 1) : null;
  const hasProjected = await waitUntil(
    async () => (await deliveredRows(pool)) - rowsAtStart >= counts.delivered,
    options.drainTimeoutMs * 3,
    100,
  );
  const projectionDrainS = hasProjected ? round((performance.now() - last.at) / 1000, 1) : null;
  const hot = await pool.query<{ updated: number; hot: number }>(
    "SELECT n_tup_upd::float8 AS updated, n_tup_hot_upd::float8 AS hot FROM pg_stat_user_tables WHERE relname = 'messages'",
  );

  return {
    shops: shops.length,
    inFlightPerSub: options.inFlightPerSub,
    windowS: round(windowMs / 1000, 1),
    notifiesPerS: rate(first.counts.notified, last.counts.notified),
    deliveriesPerS: rate(first.counts.delivered, last.counts.delivered),
    rowsPerS: rate(first.rows, last.rows),
    repushes:
      (await metricOf(broker.dispatcher.healthUrl, 'broker_dispatcher_repushes_total')) - repushesAtStart,
    refused: counts.refused,
    disruptions: disruptions.describeSince(disruptionsAtStart),
    deliveryDrainS,
    projectionDrainS,
    cpu: cpuBetween(first.cpu, last.cpu, windowMs),
    postgres: {
      commitsPerS: rate(first.pg.commits, last.pg.commits),
      insertedPerS: rate(first.pg.inserted, last.pg.inserted),
      updatedPerS: rate(first.pg.updated, last.pg.updated),
      messagesHotUpdateShare: round((hot.rows[0]?.hot ?? 0) / Math.max(1, hot.rows[0]?.updated ?? 0), 2),
    },
  };
}

export function printThroughput(result: ThroughputResult): void {
  console.log(
    `throughput: ${result.shops} shops × (1 sub, 2 mains), ${result.inFlightPerSub} notifies in flight per sub, ${result.windowS} s window`,
  );
  console.log(
    `  notifies/s ${result.notifiesPerS}   deliveries/s ${result.deliveriesPerS}   rows/s ${result.rowsPerS}   re-pushes ${result.repushes}   refused ${result.refused}   server closes ${result.disruptions}`,
  );
  console.log(
    `  drain after the load stopped: deliveries ${result.deliveryDrainS ?? 'not within the timeout'} s, projections ${result.projectionDrainS ?? 'not within the timeout'} s`,
  );
  console.log(
    `  postgres: ${result.postgres.commitsPerS} commits/s, ${result.postgres.insertedPerS} rows inserted/s, ${result.postgres.updatedPerS} updated/s (messages: ${result.postgres.messagesHotUpdateShare} of updates HOT)`,
  );
  console.log(
    `  cores used (waiting for a CPU): ${Object.entries(result.cpu.cores)
      .map(([k, v]) => `${k} ${v}${result.cpu.waiting[k] === undefined ? '' : ` (${result.cpu.waiting[k]})`}`)
      .join(', ')}`,
  );
  console.log(`  redis: ${describeRedisTop(result.cpu)}`);
}
