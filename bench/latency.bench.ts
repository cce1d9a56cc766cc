// Latency at a fixed rate (open loop: notifies go out on schedule whatever the answers do). Measured, for the
// notifies sent inside the window: notify → durable reply at the sender, notify → message received by each main
// device, and notify → the message's row showing 'delivered' in PostgreSQL (a sample of messages, polled).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type pg from 'pg';
import type { RedisClient } from '#runtime';
import { type Broker, metricOf } from './lib/broker';
import { type CpuSnapshot, type CpuUse, cpuBetween, cpuSnapshot, describeRedisTop } from './lib/cpu';
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
  /**
   * The persister's transactions per second in the window (its batch histogram's count: pg_stat_database would
   * count the benchmark's own polls too, and flushes a busy backend's counters only once a second).
   */
  commitsPerS: number;
  /** The dispatcher's re-pushes during the window and the drain (broker_dispatcher_repushes_total). */
  repushes: number;
  curves: { received: Array<[number, number]>; projected: Array<[number, number]> };
}

const TICK_MS = 1;
/** Stop offering load once this many seconds' worth of notifies are unanswered. */
const BACKLOG_LIMIT_S = 3;
const POLL_GAP_MS = 10;
/** Sampled notifies per second for the projection latency (both of their messages are watched). */
const PROJECTION_SAMPLES_PER_S = 200;

/** What one rate's run saw: samples, counters, and the measurement window (send times inside it count). */
class Recorder {
  readonly reply = new Samples();
  readonly received = new Samples();
  readonly projected = new Samples();
  /** Message id → send time of its notify, for the sampled messages not yet seen delivered. */
  readonly watched = new Map<string, number>();
  windowStart = Number.POSITIVE_INFINITY;
  windowEnd = Number.POSITIVE_INFINITY;
  sent = 0;
  answered = 0;
  answeredInWindow = 0;
  refused = 0;
  delivered = 0;

  constructor(private readonly sampleEvery: number) {}

  inWindow(t: number): boolean {
    return t >= this.windowStart && t < this.windowEnd;
  }

  onMessage(sentAt: number): void {
    this.delivered += 1;
    if (this.inWindow(sentAt)) this.received.add(performance.now() - sentAt);
  }

  onReply(shop: LiveShop, n: number, sentAt: number, eventId: string): void {
    this.answered += 1;
    if (this.inWindow(performance.now())) this.answeredInWindow += 1;
    if (!this.inWindow(sentAt)) return;
    this.reply.add(performance.now() - sentAt);
    if (n % this.sampleEvery !== 0) return;
    for (const main of shop.spec.mains) this.watched.set(`${eventId}.${main.clientId}`, sentAt);
  }

  onRefused(): void {
    this.answered += 1;
    this.refused += 1;
  }
}

/**
 * The open loop: at every tick, send whatever the schedule says is due, round-robin over the shops' subs.
 * Returns when the time is up, or (with the seconds it ran) when the backlog limit stopped it.
 */
async function offerLoad(
  shops: LiveShop[],
  options: LatencyOptions,
  recorder: Recorder,
  onWindowStart: () => Promise<void>,
): Promise<number | null> {
  const tag = `lat${options.rate}-${Date.now().toString(36)}`;
  const start = performance.now();
  const stopAt = start + options.warmupMs + options.windowMs;
  let next = 0;
  while (performance.now() < stopAt) {
    const now = performance.now();
    // Past its capacity an open loop only grows a queue, and the queue, not the broker, sets every figure
    // after that (and the next rate's): stop, and say so.
    if (recorder.sent - recorder.answered > options.rate * BACKLOG_LIMIT_S)
      return round((now - start) / 1000, 1);
    if (recorder.windowStart === Number.POSITIVE_INFINITY && now >= start + options.warmupMs) {
      recorder.windowStart = now;
      await onWindowStart();
    }
    const due = Math.floor(((now - start) * options.rate) / 1000) - recorder.sent;
    for (let i = 0; i < due; i++) {
      const shop = shops[next]!;
      next = (next + 1) % shops.length;
      const n = recorder.sent++;
      const t = performance.now();
      shop.sub.notify(notifyInput(`${tag}-${n}`, n, t)).then(
        (result) => recorder.onReply(shop, n, t, result.event_id),
        () => recorder.onRefused(),
      );
    }
    await sleep(TICK_MS);
  }
  return null;
}

export async function runLatency(
  broker: Broker,
  shops: LiveShop[],
  disruptions: Disruptions,
  pool: pg.Pool,
  redis: RedisClient,
  options: LatencyOptions,
): Promise<LatencyResult> {
  const recorder = new Recorder(Math.max(1, Math.round(options.rate / PROJECTION_SAMPLES_PER_S)));
  const disruptionsAtStart = disruptions.snapshot();
  for (const shop of shops) {
    for (const main of shop.mains) {
      main.removeAllListeners('message');
      main.on('message', (frame) => recorder.onMessage(sentAtOf(frame.data)));
    }
  }
  const pids = Object.fromEntries(broker.processes().map((p) => [p.name, p.pid]));
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let cpu0: CpuSnapshot | undefined;
  const repushesOf = () => metricOf(broker.dispatcher.healthUrl, 'broker_dispatcher_repushes_total');
  let repushes0 = 0;
  let isPolling = true;
  const transactionsOf = () => metricOf(broker.persister.healthUrl, 'broker_projection_batch_seconds_count');
  let transactions0 = 0;
  const poller = pollProjection(pool, recorder.watched, recorder.projected, () => isPolling);

  const stoppedAtS = await offerLoad(shops, options, recorder, async () => {
    loopDelay.enable();
    cpu0 = await cpuSnapshot(pids, redis, broker.database, pool);
    transactions0 = await transactionsOf();
    repushes0 = await repushesOf();
  });
  recorder.windowEnd = performance.now();
  if (recorder.windowStart > recorder.windowEnd) recorder.windowStart = recorder.windowEnd; // stopped in warm-up
  loopDelay.disable();
  const windowMs = recorder.windowEnd - recorder.windowStart;
  const cpu = cpu0
    ? cpuBetween(cpu0, await cpuSnapshot(pids, redis, broker.database, pool), windowMs)
    : { cores: {}, waiting: {}, redisTop: [] };
  const transactions = (await transactionsOf()) - transactions0;

  const mainsPerShop = shops[0]?.mains.length ?? 0;
  const hasDrained =
    (await waitUntil(
      () => recorder.answered >= recorder.sent && recorder.delivered >= recorder.sent * mainsPerShop,
      options.drainTimeoutMs,
    )) && (await waitUntil(() => recorder.watched.size === 0, options.drainTimeoutMs, 50));
  const drainS = hasDrained ? round((performance.now() - recorder.windowEnd) / 1000, 1) : null;
  isPolling = false;
  await poller;
  const repushes = (await repushesOf()) - repushes0;

  return {
    rate: options.rate,
    windowS: round(windowMs / 1000, 1),
    stoppedAtS,
    drainS,
    achievedPerS: Math.round(perSecond(recorder.answeredInWindow, windowMs)),
    reply: recorder.reply.summary(),
    received: recorder.received.summary(),
    projected: recorder.projected.summary(),
    projectionMissing: recorder.watched.size,
    refused: recorder.refused,
    disruptions: disruptions.describeSince(disruptionsAtStart),
    generatorLagP99Ms: round(loopDelay.percentile(99) / 1e6, 1),
    pollIntervalMs: POLL_GAP_MS,
    cpu,
    commitsPerS: cpu0 ? Math.round(perSecond(transactions, windowMs)) : 0,
    repushes,
    curves: { received: recorder.received.curve(), projected: recorder.projected.curve() },
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
    `  re-pushes ${result.repushes}; persister ${result.commitsPerS} transactions/s; cores used (waiting for a CPU): ${Object.entries(
      result.cpu.cores,
    )
      .map(([k, v]) => `${k} ${v}${result.cpu.waiting[k] === undefined ? '' : ` (${result.cpu.waiting[k]})`}`)
      .join(', ')}`,
  );
  console.log(`  redis: ${describeRedisTop(result.cpu)}`);
}
