// `npm run bench` / `npm run bench:quick`: starts the broker as child processes with its own Redis prefix and
// database, runs every scenario on this machine in one go, prints the figures, and writes them to BENCHMARKS.md
// with the latency chart in docs/bench/. Cleans up its keys, database and Mosquitto afterwards.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { printConnections, runConnections } from './connections.bench';
import { printLatency, runLatency } from './latency.bench';
import { type BenchEnv, Broker, benchEnv } from './lib/broker';
import { killAll } from './lib/children';
import { registerShops } from './lib/fleet';
import { loadAverage, machine } from './lib/machine';
import { type RunReport, writeReport } from './lib/report';
import { closeShops, connectShops } from './lib/shops';
import { printMosquitto, runMosquitto } from './mosquitto.bench';
import { printRedisXadd, runRedisXadd } from './redis-xadd.bench';
import { printThroughput, runThroughput } from './throughput.bench';

const SCENARIOS = ['throughput', 'latency', 'connections', 'mosquitto', 'redis'] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: string[]) {
  const quick = argv.includes('--quick');
  const profile = argv.includes('--profile');
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  const only = onlyArg ? (onlyArg.slice('--only='.length).split(',') as Scenario[]) : [...SCENARIOS];
  for (const name of only) if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name}`);
  // --no-write: print only (for trying a subset without touching BENCHMARKS.md)
  return { quick, profile, only, write: !argv.includes('--no-write') && onlyArg === undefined };
}

/** The sizes of a run: quick mode keeps every scenario but shortens windows and shrinks counts. */
function plan(quick: boolean) {
  return quick
    ? {
        shops: 100,
        inFlightPerSub: 4,
        throughput: { warmupMs: 2000, windowMs: 6000 },
        latency: { warmupMs: 1000, windowMs: 6000 },
        connections: { total: 3000, reconnect: 2000 },
        xaddRequests: 100_000,
      }
    : {
        shops: 200,
        inFlightPerSub: 4,
        throughput: { warmupMs: 3000, windowMs: 20_000 },
        latency: { warmupMs: 3000, windowMs: 30_000 },
        connections: { total: 15_000, reconnect: 10_000 },
        xaddRequests: 500_000,
      };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sizes = plan(args.quick);
  const runId = `${Date.now().toString(36)}`;
  const workDir = mkdtempSync(join(tmpdir(), `broker-bench-${runId}-`));
  const profileDir = args.profile ? join(workDir, 'profiles') : null;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const bench = benchEnv(runId, workDir, profileDir);
  const startedAt = new Date();
  const report: RunReport = {
    mode: args.quick ? 'quick' : 'full',
    command: args.quick ? 'npm run bench:quick' : 'npm run bench',
    date: startedAt.toISOString(),
    machine: machine(),
    loadAtStart: loadAverage(),
    loads: {},
    commit: gitCommit(),
    scenarios: {},
  };
  console.log(`broker benchmark (${report.mode}) — run ${runId}, work dir ${workDir}`);
  console.log(
    `machine: ${report.machine.cores} cores ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, node ${report.machine.node}; load average ${report.loadAtStart}`,
  );

  const redis = new Redis(bench.redisUrl, { connectionName: 'bench' });
  let pool: pg.Pool | undefined;
  let broker: Broker | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: stopping every child process, then cleaning up`);
      void killAll()
        .then(() => cleanup(bench, redis))
        .finally(() => process.exit(130));
    });
  }
  try {
    const wantsBroker = args.only.some((s) => s === 'throughput' || s === 'latency' || s === 'connections');
    if (wantsBroker) {
      broker = await Broker.start(bench);
      pool = new pg.Pool({ connectionString: bench.databaseUrl, max: 4 });
    }
    if (broker && pool && (args.only.includes('throughput') || args.only.includes('latency'))) {
      const specs = await registerShops(bench, 'shop', sizes.shops);
      const shops = await connectShops(broker.edgeUrl, specs);
      if (args.only.includes('throughput')) {
        report.loads.throughput = loadAverage();
        report.scenarios.throughput = await runThroughput(broker, shops, pool, redis, {
          ...sizes.throughput,
          inFlightPerSub: sizes.inFlightPerSub,
        });
        printThroughput(report.scenarios.throughput);
      }
      if (args.only.includes('latency')) {
        report.scenarios.latency = [];
        for (const rate of [1000, 3000]) {
          report.loads[`latency ${rate}/s`] = loadAverage();
          const result = await runLatency(shops, pool, { rate, ...sizes.latency });
          report.scenarios.latency.push(result);
          printLatency(result);
        }
      }
      await closeShops(shops);
    }
    if (broker && args.only.includes('connections')) {
      report.loads.connections = loadAverage();
      report.scenarios.connections = await runConnections(bench, sizes.connections);
      printConnections(report.scenarios.connections);
    }
    await broker?.stop();
    broker = undefined;
    if (args.only.includes('mosquitto')) {
      report.loads.mosquitto = loadAverage();
      report.scenarios.mosquitto = await runMosquitto(workDir, {
        shops: sizes.shops,
        inFlightPerPublisher: sizes.inFlightPerSub,
        ...sizes.throughput,
      });
      printMosquitto(report.scenarios.mosquitto);
    }
    if (args.only.includes('redis')) {
      report.loads.redis = loadAverage();
      report.scenarios.redis = await runRedisXadd(bench, redis, sizes.xaddRequests);
      printRedisXadd(report.scenarios.redis);
    }
  } finally {
    await broker?.stop();
    await pool?.end();
    await cleanup(bench, redis);
    redis.disconnect();
  }
  report.durationS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  writeFileSync(join(workDir, 'results.json'), JSON.stringify(report, null, 2));
  if (args.write) writeReport(report);
  console.log(`done in ${report.durationS} s${args.write ? '; BENCHMARKS.md updated' : ''}`);
  if (profileDir) console.log(`cpu profiles in ${profileDir}`);
}

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    });
    return dirty.trim() ? `${sha} (working tree with uncommitted changes)` : sha;
  } catch {
    return 'unknown'; // not a git checkout: the report says so
  }
}

/** Drops the run's database and every key under its prefix. */
async function cleanup(bench: BenchEnv, redis: Redis): Promise<void> {
  let keys = 0;
  for await (const batch of redis.scanStream({ match: `${bench.prefix}:*`, count: 1000 })) {
    if (batch.length > 0) keys += await redis.unlink(...batch);
  }
  const target = new URL(bench.databaseUrl);
  const name = target.pathname.slice(1);
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  console.log(`cleaned up: ${keys} Redis keys under ${bench.prefix}:, database ${name}`);
}

await main();
