// Latency at a fixed rate (open loop: notifies go out on schedule whatever the answers do). Measured, for the
// notifies sent inside the window: notify → durable reply at the sender, notify → message received by each main
// device, and notify → the message's row showing 'delivered' in PostgreSQL (a sample of messages, polled).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type pg from 'pg';
import type { RedisClient } from '#runtime';
import type { Broker } from './lib/broker';
import { type CpuSnapshot, type CpuUse, cpuBetween, cpuSnapshot, describeRedisTop } from './lib/cpu';
import { type PgActivity, pgActivity } from './lib/pg-activity';
import type { Disruptions, LiveShop } from './lib/shops';
import { notifyInput, sentAtOf } from './lib/shops';
import { perSecond, round, Samples, type Summary } from './lib/stats';
import { sleep, waitUntil } from './lib/wait';

export interface LatencyOptions {
  rate: number;
  warmupMs: number;
  windowMs: number;
  /** How long to wait for the stragglers after the window (deliveries, then sampled projections). */
  drainTimeoutMs: number;
}

export interface LatencyResult {
  rate: number;
  windowS: number;
  /** Set when the offered rate was not sustained: sending stopped this many seconds in (backlog limit reached). */
  stoppedAtS: number | null;
  /** Seconds after the window until every reply, delivery and sampled row arrived; null: not within the timeout. */
  drainS: number | null;
  /** Notify replies that arrived per second inside the window: whether the broker kept up with the offered rate. */
  achievedPerS: number;
  reply: Summary;
  received: Summary;
  projected: Summary;
  /** Sampled messages whose row was not seen delivered within the drain timeout. */
  projectionMissing: number;
  refused: number;
  /** Server-side closes the devices reconnected after, by close code. */
  disruptions: string;
  /** The load generator's own event-loop delay (p99, ms): what it adds to the figures at most. */
  generatorLagP99Ms: number;
  pollIntervalMs: number;
  cpu: CpuUse;
  /** Transactions committed per second in our database during the window (the persister's batches). */
  commitsPerS: number;
  curves: { received: Array<[number, number]>; projected: Array<[number, number]> };
}

const TICK_MS = 1;
/** Stop offering load once this many seconds' worth of notifies are unanswered. */
const BACKLOG_LIMIT_S = 3;
const POLL_GAP_MS = 10;
/** Sampled notifies per second for the projection latency (both of their messages are watched). */
const PROJECTION_SAMPLES_PER_S = 200;

export async function runLatency(
  broker: Broker,
  shops: LiveShop[],
  disruptions: Disruptions,
  pool: pg.Pool,
  redis: RedisClient,
  options: LatencyOptions,
): Promise<LatencyResult> {
  const pids = Object.fromEntries(broker.processes().map((p) => [p.name, p.pid]));
  let cpu0: CpuSnapshot | undefined;
  let pg0: PgActivity | undefined;
  const reply = new Samples();
  const received = new Samples();
  const projected = new Samples();
  /** Message id → send time of its notify, for the sampled messages not yet seen delivered. */
  const watched = new Map<string, number>();
  const sampleEvery = Math.max(1, Math.round(options.rate / PROJECTION_SAMPLES_PER_S));
  const tag = `lat${options.rate}-${Date.now().toString(36)}`;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  const inWindow = (t: number) => t >= windowStart && t < windowEnd;
  let answered = 0;
  let refused = 0;
  const disruptionsAtStart = disruptions.snapshot();
  let answeredInWindow = 0;
  let deliveredCount = 0;

  for (const shop of shops) {
    for (const main of shop.mains) {
      main.removeAllListeners('message');
      main.on('message', (frame) => {
        deliveredCount += 1;
        const t = sentAtOf(frame.data);
        if (inWindow(t)) received.add(performance.now() - t);
      });
    }
  }
  const onReply = (shop: LiveShop, n: number, t: number, eventId: string) => {
    answered += 1;
    if (inWindow(performance.now())) answeredInWindow += 1;
    if (!inWindow(t)) return;
    reply.add(performance.now() - t);
    if (n % sampleEvery === 0)
      for (const main of shop.spec.mains) watched.set(`${eventId}.${main.clientId}`, t);
  };

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let isPolling = true;
  const poller = pollProjection(pool, watched, projected, () => isPolling);

  // Open loop: at every tick, send whatever the schedule says is due, round-robin over the shops' subs.
  const start = performance.now();
  const stopAt = start + options.warmupMs + options.windowMs;
  let sent = 0;
  let next = 0;
  let stoppedAtS: number | null = null;
  while (performance.now() < stopAt) {
    const now = performance.now();
    // Past its capacity an open loop only grows a queue, and the queue, not the broker, sets every figure
    // after that (and the next scenario's): stop, and say so.
    if (sent - answered > options.rate * BACKLOG_LIMIT_S) {
      stoppedAtS = round((now - start) / 1000, 1);
      break;
    }
    if (windowStart === Number.POSITIVE_INFINITY && now >= start + options.warmupMs) {
      windowStart = now;
      loopDelay.enable();
      cpu0 = await cpuSnapshot(pids, redis, broker.database);
      pg0 = await pgActivity(pool);
    }
    const due = Math.floor(((now - start) * options.rate) / 1000) - sent;
    for (let i = 0; i < due; i++) {
      const shop = shops[next]!;
      next = (next + 1) % shops.length;
      const n = sent;
      const t = performance.now();
      shop.sub.notify(notifyInput(`${tag}-${n}`, n, t)).then(
        (result) => onReply(shop, n, t, result.event_id),
        () => {
          answered += 1;
          refused += 1;
        },
      );
      sent += 1;
    }
    await sleep(TICK_MS);
  }
  windowEnd = performance.now();
  if (windowStart > windowEnd) windowStart = windowEnd; // stopped during the warm-up: an empty window
  loopDelay.disable();
  const windowMs = windowEnd - windowStart;
  const cpu = cpu0
    ? cpuBetween(cpu0, await cpuSnapshot(pids, redis, broker.database), windowMs)
    : { cores: {}, waiting: {}, redisTop: [] };
  const pg1 = await pgActivity(pool);
  const commitsPerS = pg0 ? Math.round(perSecond(pg1.commits - pg0.commits, windowMs)) : 0;
  const mainsPerShop = shops[0]?.mains.length ?? 0;

  const hasDrained =
    (await waitUntil(
      () => answered >= sent && deliveredCount >= sent * mainsPerShop,
      options.drainTimeoutMs,
    )) && (await waitUntil(() => watched.size === 0, options.drainTimeoutMs, 50));
  const drainS = hasDrained ? round((performance.now() - windowEnd) / 1000, 1) : null;
  isPolling = false;
  await poller;

  return {
    rate: options.rate,
    windowS: round(windowMs / 1000, 1),
    stoppedAtS,
    drainS,
    achievedPerS: Math.round(perSecond(answeredInWindow, windowMs)),
    reply: reply.summary(),
    received: received.summary(),
    projected: projected.summary(),
    projectionMissing: watched.size,
    refused,
    disruptions: disruptions.describeSince(disruptionsAtStart),
    generatorLagP99Ms: round(loopDelay.percentile(99) / 1e6, 1),
    pollIntervalMs: POLL_GAP_MS,
    cpu,
    commitsPerS,
    curves: { received: received.curve(), projected: projected.curve() },
  };
}

/**
 * Polls the watched message ids until their rows show 'delivered'. A row seen by a query is credited with the
 * time that query returned: an upper bound, late by at most one poll gap plus one query.
 */
async function pollProjection(
  pool: pg.Pool,
  watched: Map<string, number>,
  projected: Samples,
  isActive: () => boolean,
): Promise<void> {
  while (isActive()) {
    const ids = [...watched.keys()].slice(0, 5000);
    if (ids.length > 0) {
      const { rows } = await pool.query<{ id: string }>(
        "SELECT id FROM messages WHERE id = ANY($1::text[]) AND state <> 'pending'",
        [ids],
      );
      const seen = performance.now();
      for (const { id } of rows) {
        const t = watched.get(id);
        if (t === undefined) continue;
        projected.add(seen - t);
        watched.delete(id);
      }
    }
    await sleep(POLL_GAP_MS);
  }
}

export function printLatency(result: LatencyResult): void {
  const fmt = (s: Summary) =>
    `p50 ${round(s.p50, 1)}  p99 ${round(s.p99, 1)}  p99.9 ${round(s.p999, 1)}  max ${round(s.max, 1)} ms (n=${s.count})`;
  console.log(
    `latency at ${result.rate} notifies/s (${result.windowS} s window, achieved ${result.achievedPerS}/s, generator loop p99 ${result.generatorLagP99Ms} ms)`,
  );
  console.log(`  notify → reply     ${fmt(result.reply)}`);
  console.log(`  notify → received  ${fmt(result.received)}`);
  console.log(
    `  notify → projected ${fmt(result.projected)}${result.projectionMissing ? `, ${result.projectionMissing} not seen` : ''}`,
  );
  if (result.stoppedAtS !== null)
    console.log(
      `  NOT SUSTAINED: over ${BACKLOG_LIMIT_S} s of notifies unanswered after ${result.stoppedAtS} s; sending stopped`,
    );
  console.log(
    `  refused ${result.refused}, server closes ${result.disruptions}, drained ${result.drainS === null ? 'not within the timeout' : `${result.drainS} s after the window`}`,
  );
  console.log(
    `  postgres ${result.commitsPerS} commits/s; cores used (waiting for a CPU): ${Object.entries(
      result.cpu.cores,
    )
      .map(([k, v]) => `${k} ${v}${result.cpu.waiting[k] === undefined ? '' : ` (${result.cpu.waiting[k]})`}`)
      .join(', ')}`,
  );
  console.log(`  redis: ${describeRedisTop(result.cpu)}`);
}
