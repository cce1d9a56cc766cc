// `npm run bench:soak`: what the broker holds over time (issue 19). A steady open-loop load — by default 1,000
// notifies/s spread over 500 shops for 10 minutes, every main acking — against the broker as child processes, one
// of them restarted half-way. Every sample interval it records Redis used_memory and key count (the whole server,
// and the broker's own keys measured alone), each broker process's RSS and heap, PostgreSQL's database size, the
// consumer groups' lag and the retry queue's depth. It prints the growth per notify of each figure after the first
// stream tail (a leak shows as a slope), and writes a chart (docs/bench/soak.svg) and a table to BENCHMARKS.md.
// Flags: --minutes=10 --rate=1000 --shops=500 --sample-s=10 --restart=edge|dispatcher|persister|none
// --retention-ms=<the stream tail; default the broker's own> --no-write.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { groupLag } from '#eventlog';
import { Keys } from '#events';
import { loadConfig } from '#runtime';
import {
  type BenchEnv,
  type BrokerProcess,
  benchEnv,
  cleanUpRun,
  type ServiceName,
  startService,
} from './lib/broker';
import { killAll } from './lib/children';
import { registerShops } from './lib/fleet';
import { footprintOf, formatBytes } from './lib/footprint';
import { loadAverage, machine } from './lib/machine';
import { writeSection } from './lib/report';
import { closeShops, connectShops, Disruptions, notifyInput } from './lib/shops';
import { soakChart } from './lib/soak-chart';
import { sleep, waitUntil } from './lib/wait';

export interface SoakOptions {
  minutes: number;
  rate: number;
  shops: number;
  sampleS: number;
  restart: ServiceName | 'none';
  /** Where the run's Redis and PostgreSQL are (default: REDIS_URL / DATABASE_URL, else the local defaults). */
  redisUrl?: string;
  databaseUrl?: string;
  /** Stream tail for the run (default: the broker's own default). */
  retentionMs?: number;
  log?: (line: string) => void;
}

export interface SoakSample {
  t: number;
  /** Notifies the senders had answered so far, and messages the mains had received. */
  notified: number;
  received: number;
  redisUsedMemory: number;
  redisKeys: number;
  /** The broker's own keys (under the run's prefix), measured key by key. */
  ownBytes: number;
  ownKeys: number;
  /**
   * The broker's keys but its streams (whose tail is the saw-tooth of the retention rounds), and of them the
   * req_id filters: what a notify leaves beyond the tail, without the tail's noise.
   */
  ownBesideStreams: number;
  filterBytes: number;
  rss: Record<ServiceName, number>;
  heap: Record<ServiceName, number>;
  postgresBytes: number;
  /** Entries read-but-unacked plus unread, over every shard, per consumer group. */
  persisterLag: number;
  dispatcherLag: number;
  retryDepth: number;
}

export interface Growth {
  figure: string;
  unit: 'B' | 'keys';
  /** Least-squares slope over the steady part, per second and per notify. */
  perS: number;
  perNotify: number;
  /**
   * Redis figures only: the slope of the floor, least squares over the samples that follow a drop (a retention
   * round's trim). The streams make a saw-tooth of a round's height (~25 MB at 1,000/s), and a line fitted to all
   * samples moves with where the window starts in it; the floor does not, and a leak raises it as well.
   */
  floorPerNotify?: number;
}

export interface SoakResult {
  options: Omit<SoakOptions, 'log'>;
  date: string;
  machine: ReturnType<typeof machine>;
  retentionMs: number;
  samples: SoakSample[];
  restartAtS: number | null;
  /** Samples from this time on count for the growth (after the first stream tail, and a minute). */
  steadyFromS: number;
  growth: Growth[];
  sent: number;
  notified: number;
  refused: number;
  received: number;
  /** Messages never received by a main after the load stopped and the drain ended. */
  missing: number;
}

const SERVICES: ServiceName[] = ['edge', 'dispatcher', 'persister'];

async function processFigures(proc: BrokerProcess): Promise<{ rss: number; heap: number }> {
  const text = await (await fetch(`${proc.healthUrl}/metrics`)).text();
  const value = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : Number.NaN;
  };
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes') };
}

async function retryDepth(redis: Redis, bench: BenchEnv): Promise<number> {
  const queue = `${bench.prefix}:{retries}:redeliveries`;
  const [wait, active, delayed, prioritized] = await Promise.all([
    redis.llen(`${queue}:wait`),
    redis.llen(`${queue}:active`),
    redis.zcard(`${queue}:delayed`),
    redis.zcard(`${queue}:prioritized`),
  ]);
  return wait + active + delayed + prioritized;
}

async function consumerLag(redis: Redis, keys: Keys, group: string): Promise<number> {
  const lags = await Promise.all(keys.allShards().map((s) => groupLag(redis, keys.stream(s), group)));
  return lags.reduce((n, l) => n + l.pending + l.unread, 0);
}

/** Least-squares slope of value over time. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const mv = points.reduce((a, [, v]) => a + v, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of points) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The points that follow a drop: where a saw-tooth stands just after each fall. */
export function floorOf(points: Array<[number, number]>): Array<[number, number]> {
  return points.filter((p, i) => i > 0 && p[1] < (points[i - 1]?.[1] ?? Number.NEGATIVE_INFINITY));
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const say = options.log ?? ((line: string) => console.log(line));
  const runId = Date.now().toString(36);
  const workDir = mkdtempSync(join(tmpdir(), `broker-soak-${runId}-`));
  const bench = benchEnv(runId, workDir, null, options);
  if (options.retentionMs !== undefined) bench.env.STREAM_RETENTION_MS = String(options.retentionMs);
  const { config } = loadConfig(bench.env);
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = new Redis(bench.redisUrl, { connectionName: 'bench-soak' });
  const procs = {} as Record<ServiceName, BrokerProcess>;
  let pool: pg.Pool | undefined;
  try {
    procs.persister = await startService(bench, 'persister', 'persister');
    procs.dispatcher = await startService(bench, 'dispatcher', 'dispatcher');
    procs.edge = await startService(bench, 'edge', 'edge-1');
    pool = new pg.Pool({ connectionString: bench.databaseUrl, max: 2 });
    say(
      `soak run ${runId}: ${options.shops} shops, ${options.rate} notifies/s, ${options.minutes} min, log ${workDir}`,
    );
    const specs = await registerShops(bench, 'soak', options.shops);
    const shops = await connectShops(`ws://127.0.0.1:${procs.edge.port}/ws`, specs, new Disruptions());

    const counts = { sent: 0, notified: 0, refused: 0, received: 0 };
    const seen = new Set<string>();
    for (const shop of shops) {
      for (const main of shop.mains) {
        main.on('message', (message) => {
          // A message id names its notify and its recipient: each main's copy counts once.
          if (seen.has(message.id)) return;
          seen.add(message.id);
          counts.received += 1;
        });
      }
    }

    const durationMs = options.minutes * 60_000;
    const restartAtMs = options.restart === 'none' ? null : durationMs / 2;
    let restarted = false;
    const t0 = performance.now();
    const elapsedS = () => (performance.now() - t0) / 1000;
    // Open loop: every 20 ms the notifies due by then, round robin over the shops' subs.
    let next = 0;
    const loader = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * options.rate) - counts.sent;
      for (let i = 0; i < due; i++) {
        const shop = shops[next++ % shops.length]!;
        const n = ++counts.sent;
        shop.sub.notify(notifyInput(`soak-${n}`, n, performance.now())).then(
          () => {
            counts.notified += 1;
          },
          () => {
            counts.refused += 1;
          },
        );
      }
    }, 20);

    const samples: SoakSample[] = [];
    const sample = async () => {
      const [memory, redisKeys, own, postgres, persisterLag, dispatcherLag, depth] = await Promise.all([
        redis.info('memory'),
        redis.dbsize(),
        footprintOf(redis, bench.prefix),
        pool!.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n'),
        consumerLag(redis, keys, 'persister'),
        consumerLag(redis, keys, 'dispatcher'),
        retryDepth(redis, bench),
      ]);
      const figures = await Promise.all(SERVICES.map((s) => processFigures(procs[s])));
      const s: SoakSample = {
        t: Math.round(elapsedS()),
        notified: counts.notified,
        received: counts.received,
        redisUsedMemory: Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? Number.NaN),
        redisKeys,
        ownBytes: own.bytes,
        ownKeys: own.keys,
        ownBesideStreams: own.bytes - (own.byKind.log?.bytes ?? 0),
        filterBytes: own.byKind['req-filter']?.bytes ?? 0,
        rss: Object.fromEntries(SERVICES.map((svc, i) => [svc, figures[i]!.rss])) as Record<
          ServiceName,
          number
        >,
        heap: Object.fromEntries(SERVICES.map((svc, i) => [svc, figures[i]!.heap])) as Record<
          ServiceName,
          number
        >,
        postgresBytes: Number(postgres.rows[0]?.n ?? Number.NaN),
        persisterLag,
        dispatcherLag,
        retryDepth: depth,
      };
      samples.push(s);
      say(
        `[${String(s.t).padStart(5)} s] notified ${s.notified}, received ${s.received}; Redis ${formatBytes(s.redisUsedMemory)} ` +
          `(own ${formatBytes(s.ownBytes)} in ${s.ownKeys} keys, ${formatBytes(s.ownBesideStreams)} beside the streams); RSS edge ${formatBytes(s.rss.edge)}, dispatcher ` +
          `${formatBytes(s.rss.dispatcher)}, persister ${formatBytes(s.rss.persister)}; PostgreSQL ${formatBytes(s.postgresBytes)}; ` +
          `lag ${s.persisterLag}/${s.dispatcherLag}; retries ${s.retryDepth}`,
      );
    };

    try {
      await sample();
      while (performance.now() - t0 < durationMs) {
        const nextSample = samples.length * options.sampleS * 1000;
        if (restartAtMs !== null && !restarted && performance.now() - t0 >= restartAtMs) {
          restarted = true;
          const name = options.restart as ServiceName;
          say(`[${Math.round(elapsedS())} s] restarting the ${name}`);
          const old = procs[name];
          await old.stop();
          procs[name] = await startService(bench, name, name === 'edge' ? 'edge-1' : name, {
            port: name === 'edge' ? old.port : undefined,
          });
        }
        const wait = Math.min(nextSample, restartAtMs !== null && !restarted ? restartAtMs : nextSample);
        await sleep(Math.max(10, wait - (performance.now() - t0)));
        if (performance.now() - t0 >= nextSample) await sample();
      }
    } finally {
      clearInterval(loader);
    }
    // Drain: every answered notify's messages reach both mains (each main's copy counted once).
    const mains = specs[0]?.mains.length ?? 2;
    await waitUntil(() => counts.notified + counts.refused >= counts.sent, 60_000, 100);
    await waitUntil(() => counts.received >= counts.notified * mains, 60_000, 100);
    await sample();
    await closeShops(shops);

    const retentionMs = config.consumer.retentionMs;
    const steadyFromS = Math.min(durationMs / 2000, retentionMs / 1000 + 60);
    const steady = samples.slice(0, -1).filter((s) => s.t >= steadyFromS);
    const growth: Growth[] = [];
    const add = (
      figure: string,
      pick: (s: SoakSample) => number,
      unit: Growth['unit'] = 'B',
      floor = false,
    ) => {
      const points = steady.map((s): [number, number] => [s.t, pick(s)]);
      const perS = slope(points);
      const floorPerS = floor ? slope(floorOf(points)) : undefined;
      growth.push({
        figure,
        unit,
        perS,
        perNotify: perS / options.rate,
        ...(floorPerS === undefined ? {} : { floorPerNotify: floorPerS / options.rate }),
      });
    };
    add('Redis used_memory (whole server)', (s) => s.redisUsedMemory, 'B', true);
    add("Redis, the broker's own keys (bytes)", (s) => s.ownBytes, 'B', true);
    add("Redis, the broker's own keys but the streams (bytes)", (s) => s.ownBesideStreams);
    add('Redis, of those the req_id filters (bytes)', (s) => s.filterBytes);
    add("Redis, the broker's own keys (count)", (s) => s.ownKeys, 'keys');
    for (const svc of SERVICES) add(`${svc} RSS`, (s) => s.rss[svc]);
    for (const svc of SERVICES) add(`${svc} heap used`, (s) => s.heap[svc]);
    add('PostgreSQL database size', (s) => s.postgresBytes);
    const { log: _log, ...recorded } = options;
    return {
      options: recorded,
      date: new Date().toISOString(),
      machine: machine(),
      retentionMs,
      samples,
      restartAtS: restartAtMs === null ? null : Math.round(restartAtMs / 1000),
      steadyFromS,
      growth,
      sent: counts.sent,
      notified: counts.notified,
      refused: counts.refused,
      received: counts.received,
      missing: Math.max(0, counts.notified * mains - counts.received),
    };
  } finally {
    await Promise.all(Object.values(procs).map((p) => p.stop()));
    await pool?.end();
    await cleanUpRun(bench, redis);
    redis.disconnect();
  }
}

function formatGrowth(g: Growth): string {
  return g.unit === 'keys' ? `${g.perNotify.toFixed(4)} keys` : `${g.perNotify.toFixed(1)} B`;
}

function formatFloor(g: Growth): string {
  return g.floorPerNotify === undefined ? '' : `${g.floorPerNotify.toFixed(1)} B`;
}

export function renderSoak(r: SoakResult): string {
  const mb = (v: number) => (v / 1e6).toFixed(1);
  const lines = [
    `### Soak (${r.options.minutes} min, ${r.options.rate} notifies/s over ${r.options.shops} shops, ${r.options.restart} restarted at ${r.restartAtS ?? '-'} s)`,
    '',
    `\`npm run bench:soak\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC; ${r.machine.cores} cores ${r.machine.cpuModel}, node ${r.machine.node}; load average at the end ${loadAverage()}. Stream tail STREAM_RETENTION_MS=${r.retentionMs}. Sent ${r.sent}, answered ${r.notified}, refused ${r.refused}; messages received ${r.received}, missing after the drain ${r.missing}.`,
    '',
    '![soak](docs/bench/soak.svg)',
    '',
    `Growth per notify, least squares over the samples from ${Math.round(r.steadyFromS)} s on (after the first tail); for Redis also the floor's (the samples just after each retention round's trim, which the saw-tooth's phase does not move):`,
    '',
    '| figure | per s | per notify | floor, per notify |',
    '|---|---:|---:|---:|',
    ...r.growth.map((g) => `| ${g.figure} | ${g.perS.toFixed(1)} | ${formatGrowth(g)} | ${formatFloor(g)} |`),
    '',
    '| t (s) | answered | received | Redis used_memory MB | own keys MB | beside the streams MB | own keys | RSS edge / dispatcher / persister MB | heap MB | PostgreSQL MB | lag persister / dispatcher | retry queue |',
    '|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---:|',
    ...r.samples.map(
      (s) =>
        `| ${s.t} | ${s.notified} | ${s.received} | ${mb(s.redisUsedMemory)} | ${mb(s.ownBytes)} | ${mb(s.ownBesideStreams)} | ${s.ownKeys} | ${mb(s.rss.edge)} / ${mb(s.rss.dispatcher)} / ${mb(s.rss.persister)} | ${mb(s.heap.edge)} / ${mb(s.heap.dispatcher)} / ${mb(s.heap.persister)} | ${mb(s.postgresBytes)} | ${s.persisterLag} / ${s.dispatcherLag} | ${s.retryDepth} |`,
    ),
  ];
  return lines.join('\n');
}

export function chartOf(r: SoakResult): string {
  const series = (label: string, pick: (s: SoakSample) => number) => ({
    label,
    points: r.samples.map((s) => [s.t, pick(s)] as [number, number]),
  });
  return soakChart(
    `Soak: ${r.options.rate} notifies/s, ${r.options.shops} shops, ${r.options.minutes} min (dashed: ${r.options.restart} restart)`,
    [
      {
        title: 'Redis used_memory',
        unit: 'bytes',
        series: [series('whole server', (s) => s.redisUsedMemory)],
      },
      {
        title: "Redis, the broker's own keys",
        unit: 'bytes',
        series: [series('bytes', (s) => s.ownBytes)],
      },
      {
        title: 'RSS per process',
        unit: 'bytes',
        series: SERVICES.map((svc) => series(svc, (s) => s.rss[svc])),
      },
      {
        title: 'Heap used per process',
        unit: 'bytes',
        series: SERVICES.map((svc) => series(svc, (s) => s.heap[svc])),
      },
      { title: 'PostgreSQL database size', unit: 'bytes', series: [series('size', (s) => s.postgresBytes)] },
      {
        title: 'Consumer lag and retry queue',
        unit: 'entries',
        series: [
          series('persister', (s) => s.persisterLag),
          series('dispatcher', (s) => s.dispatcherLag),
          series('retries', (s) => s.retryDepth),
        ],
      },
    ],
    r.restartAtS,
  );
}

function writeSoak(r: SoakResult): void {
  writeSection('soak', renderSoak(r));
  mkdirSync('docs/bench', { recursive: true });
  writeFileSync('docs/bench/soak.svg', chartOf(r));
  writeFileSync('docs/bench/results-soak.json', `${JSON.stringify(r, null, 2)}\n`);
}

function flag(argv: string[], name: string, fallback: string): string {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const restart = flag(argv, 'restart', 'edge');
  if (!['edge', 'dispatcher', 'persister', 'none'].includes(restart))
    throw new Error(`--restart=${restart}?`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void killAll().finally(() => process.exit(130)));
  }
  try {
    const result = await runSoak({
      minutes: Number(flag(argv, 'minutes', '10')),
      rate: Number(flag(argv, 'rate', '1000')),
      shops: Number(flag(argv, 'shops', '500')),
      sampleS: Number(flag(argv, 'sample-s', '10')),
      restart: restart as SoakOptions['restart'],
      retentionMs: argv.some((a) => a.startsWith('--retention-ms='))
        ? Number(flag(argv, 'retention-ms', '0'))
        : undefined,
    });
    console.log(`\ngrowth per notify after ${Math.round(result.steadyFromS)} s:`);
    for (const g of result.growth) {
      const floor = g.floorPerNotify === undefined ? '' : `; floor ${formatFloor(g)}`;
      console.log(`  ${g.figure}: ${formatGrowth(g)} (${g.perS.toFixed(1)}/s)${floor}`);
    }
    console.log(`missing after the drain: ${result.missing}`);
    if (!argv.includes('--no-write')) {
      writeSoak(result);
      console.log('BENCHMARKS.md (soak section) and docs/bench/soak.svg written');
    }
  } finally {
    await killAll();
  }
}
