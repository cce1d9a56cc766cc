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

export async function runThroughput(
  broker: Broker,
  shops: LiveShop[],
  disruptions: Disruptions,
  pool: pg.Pool,
  redis: RedisClient,
  options: ThroughputOptions,
): Promise<ThroughputResult> {
  const counts = { sent: 0, notified: 0, refused: 0, delivered: 0 };
  let isRunning = true;
  let n = 0;
  const mainsPerShop = shops[0]?.mains.length ?? 0;
  const rowsAtStart = await deliveredRows(pool);
  const repushesAtStart = await metricOf(broker.dispatcher.healthUrl, 'broker_dispatcher_repushes_total');
  const disruptionsAtStart = disruptions.snapshot();

  for (const shop of shops) {
    const sendNext = () => {
      counts.sent += 1;
      n += 1;
      shop.sub.notify(notifyInput(`tp-${n}`, n, performance.now())).then(
        () => {
          counts.notified += 1;
          if (isRunning) sendNext();
        },
        () => {
          counts.refused += 1;
          if (isRunning) sendNext();
        },
      );
    };
    for (const main of shop.mains) {
      main.removeAllListeners('message');
      main.on('message', () => {
        counts.delivered += 1;
      });
    }
    for (let i = 0; i < options.inFlightPerSub; i++) sendNext();
  }

  const pids = Object.fromEntries(broker.processes().map((p) => [p.name, p.pid]));
  await sleep(options.warmupMs);
  const t0 = performance.now();
  const [before, rows0] = [{ ...counts }, await deliveredRows(pool)];
  const cpu0 = await cpuSnapshot(pids, redis, broker.database);
  const pg0 = await pgActivity(pool);
  await sleep(options.windowMs);
  const t1 = performance.now();
  const [after, rows1] = [{ ...counts }, await deliveredRows(pool)];
  const cpu1 = await cpuSnapshot(pids, redis, broker.database);
  const pg1 = await pgActivity(pool);
  const windowMs = t1 - t0;

  isRunning = false;
  const hasDelivered = await waitUntil(
    () =>
      counts.notified + counts.refused >= counts.sent && counts.delivered >= counts.notified * mainsPerShop,
    options.drainTimeoutMs,
  );
  const deliveryDrainS = hasDelivered ? (performance.now() - t1) / 1000 : null;
  const hasProjected = await waitUntil(
    async () => (await deliveredRows(pool)) - rowsAtStart >= counts.delivered,
    options.drainTimeoutMs * 3,
    100,
  );
  const projectionDrainS = hasProjected ? (performance.now() - t1) / 1000 : null;
  const hot = await pool.query<{ updated: number; hot: number }>(
    "SELECT n_tup_upd::float8 AS updated, n_tup_hot_upd::float8 AS hot FROM pg_stat_user_tables WHERE relname = 'messages'",
  );

  return {
    shops: shops.length,
    inFlightPerSub: options.inFlightPerSub,
    windowS: round(windowMs / 1000, 1),
    notifiesPerS: Math.round(perSecond(after.notified - before.notified, windowMs)),
    deliveriesPerS: Math.round(perSecond(after.delivered - before.delivered, windowMs)),
    rowsPerS: Math.round(perSecond(rows1 - rows0, windowMs)),
    repushes:
      (await metricOf(broker.dispatcher.healthUrl, 'broker_dispatcher_repushes_total')) - repushesAtStart,
    refused: counts.refused,
    disruptions: disruptions.describeSince(disruptionsAtStart),
    deliveryDrainS: deliveryDrainS === null ? null : round(deliveryDrainS, 1),
    projectionDrainS: projectionDrainS === null ? null : round(projectionDrainS, 1),
    cpu: cpuBetween(cpu0, cpu1, windowMs),
    postgres: {
      commitsPerS: Math.round(perSecond(pg1.commits - pg0.commits, windowMs)),
      insertedPerS: Math.round(perSecond(pg1.inserted - pg0.inserted, windowMs)),
      updatedPerS: Math.round(perSecond(pg1.updated - pg0.updated, windowMs)),
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
