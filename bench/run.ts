// `npm run bench` / `npm run bench:quick`: starts the broker as child processes with its own Redis prefix and
// database, runs every scenario on this machine in one go, prints the figures, and writes them to BENCHMARKS.md
// with the latency chart in docs/bench/. Cleans up its keys, database and Mosquitto afterwards.
// Flags: --quick (shorter windows, smaller counts), --profile (broker processes under --cpu-prof),
// --only=a,b (a subset, printed only; BENCHMARKS.md is left alone), --rates=250,1000 (latency rates, likewise),
// --no-write.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { printConnections, runConnections } from './connections.bench';
import { printLatency, runLatency } from './latency.bench';
import { type BenchEnv, Broker, benchEnv, cleanUpRun } from './lib/broker';
import { killAll } from './lib/children';
import { benchPool } from './lib/cpu';
import { registerShops } from './lib/fleet';
import { loadAverage, machine, redisPing } from './lib/machine';
import { runOtherBenches } from './lib/others';
import { type RunReport, writeReport } from './lib/report';
import { closeShops, connectShops, Disruptions } from './lib/shops';
import { printMosquitto, runMosquitto } from './mosquitto.bench';
import { printRedisXadd, runRedisXadd } from './redis-xadd.bench';
import { printThroughput, runThroughput } from './throughput.bench';

/** The targets name 1,000 and 3,000/s; 250/s is well below capacity, where latency is the pipeline's own. */
const LATENCY_RATES = [250, 1000, 3000];
const SCENARIOS = ['throughput', 'latency', 'connections', 'mosquitto', 'redis', 'others'] as const;
type Scenario = (typeof SCENARIOS)[number];
const OUR_FILES = [
  'throughput.bench.ts',
  'latency.bench.ts',
  'connections.bench.ts',
  'mosquitto.bench.ts',
  'redis-xadd.bench.ts',
];

function parseArgs(argv: string[]) {
  const quick = argv.includes('--quick');
  const onlyArg = argv.find((a) => a.startsWith('--only='));
  const only = onlyArg ? onlyArg.slice('--only='.length).split(',') : [...SCENARIOS];
  for (const name of only)
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario ${name}`);
  const ratesArg = argv.find((a) => a.startsWith('--rates='));
  return {
    quick,
    rates: ratesArg ? ratesArg.slice('--rates='.length).split(',').map(Number) : LATENCY_RATES,
    profile: argv.includes('--profile'),
    wants: (scenario: Scenario) => only.includes(scenario) && !(quick && scenario === 'others'),
    write: !argv.includes('--no-write') && onlyArg === undefined && ratesArg === undefined,
  };
}

type Args = ReturnType<typeof parseArgs>;

/** The sizes of a run: quick mode keeps every scenario but shortens windows and shrinks counts. */
function plan(quick: boolean) {
  return quick
    ? {
        shops: 100,
        inFlightPerSub: 4,
        throughput: { warmupMs: 1500, windowMs: 5000, drainTimeoutMs: 10_000 },
        latency: { warmupMs: 1000, windowMs: 5000, drainTimeoutMs: 10_000 },
        connections: { total: 2000, reconnect: 1000 },
        xaddRequests: 100_000,
      }
    : {
        shops: 200,
        inFlightPerSub: 4,
        throughput: { warmupMs: 3000, windowMs: 20_000, drainTimeoutMs: 60_000 },
        latency: { warmupMs: 3000, windowMs: 30_000, drainTimeoutMs: 60_000 },
        connections: { total: 15_000, reconnect: 10_000 },
        xaddRequests: 500_000,
      };
}

type Plan = ReturnType<typeof plan>;

const t0 = performance.now();

/** Load average and Redis round trip as a scenario starts: how much of the machine the broker was left. */
async function noteLoad(report: RunReport, redis: Redis, scenario: string): Promise<void> {
  report.loads[scenario] = `load ${loadAverage()}; ${await redisPing(redis)}`;
}
function phase(text: string): void {
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${text}`);
}

/** Throughput, latency and connections, against one broker (edge, dispatcher, persister processes). */
async function brokerScenarios(args: Args, sizes: Plan, bench: BenchEnv, redis: Redis, report: RunReport) {
  phase('starting the broker (persister, dispatcher, edge)');
  const broker = await Broker.start(bench);
  const pool = benchPool(bench.databaseUrl, 4);
  try {
    if (args.wants('throughput') || args.wants('latency')) {
      phase(`registering and connecting ${sizes.shops} shops`);
      const disruptions = new Disruptions();
      const specs = await registerShops(bench, 'shop', sizes.shops);
      const shops = await connectShops(broker.edgeUrl, specs, disruptions);
      if (args.wants('throughput')) {
        phase('throughput');
        await noteLoad(report, redis, 'throughput');
        report.scenarios.throughput = await runThroughput(broker, shops, disruptions, pool, redis, {
          ...sizes.throughput,
          inFlightPerSub: sizes.inFlightPerSub,
        });
        printThroughput(report.scenarios.throughput);
      }
      if (args.wants('latency')) {
        report.scenarios.latency = [];
        for (const rate of args.rates) {
          phase(`latency at ${rate}/s`);
          await noteLoad(report, redis, `latency ${rate}/s`);
          const result = await runLatency(broker, shops, disruptions, pool, redis, {
            rate,
            ...sizes.latency,
          });
          report.scenarios.latency.push(result);
          printLatency(result);
        }
      }
      await closeShops(shops);
    }
    if (args.wants('connections')) {
      phase(`connections (${sizes.connections.total}, then ${sizes.connections.reconnect} reconnects)`);
      await noteLoad(report, redis, 'connections');
      report.scenarios.connections = await runConnections(bench, sizes.connections);
      printConnections(report.scenarios.connections);
    }
  } finally {
    phase('stopping the broker');
    await pool.end();
    await broker.stop();
  }
}

async function peerScenarios(args: Args, sizes: Plan, bench: BenchEnv, redis: Redis, report: RunReport) {
  if (args.wants('mosquitto')) {
    phase('mosquitto');
    await noteLoad(report, redis, 'mosquitto');
    report.scenarios.mosquitto = await runMosquitto(bench.workDir, {
      shops: sizes.shops,
      inFlightPerPublisher: sizes.inFlightPerSub,
      warmupMs: sizes.throughput.warmupMs,
      windowMs: sizes.throughput.windowMs,
    });
    printMosquitto(report.scenarios.mosquitto);
  }
  if (args.wants('redis')) {
    phase('redis XADD ceiling');
    await noteLoad(report, redis, 'redis');
    report.scenarios.redis = await runRedisXadd(bench, redis, sizes.xaddRequests);
    printRedisXadd(report.scenarios.redis);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sizes = plan(args.quick);
  const runId = Date.now().toString(36);
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
  console.log(`broker benchmark (${report.mode}), run ${runId}, work dir ${workDir}`);
  console.log(
    `machine: ${report.machine.cores} cores ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, node ${report.machine.node}; load average ${report.loadAtStart}`,
  );

  const redis = new Redis(bench.redisUrl, { connectionName: 'bench' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: stopping every child process, then cleaning up`);
      void killAll()
        .then(() => cleanup(bench, redis))
        .finally(() => process.exit(130));
    });
  }
  try {
    if (args.wants('throughput') || args.wants('latency') || args.wants('connections'))
      await brokerScenarios(args, sizes, bench, redis, report);
    await peerScenarios(args, sizes, bench, redis, report);
  } finally {
    await cleanup(bench, redis);
    redis.disconnect();
  }
  if (args.wants('others')) {
    phase('the other bench/*.bench.ts files');
    report.others = await runOtherBenches(OUR_FILES, 600_000);
  }
  report.durationS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  writeFileSync(join(workDir, 'results.json'), JSON.stringify(report, null, 2));
  if (args.write) writeReport(report);
  phase(`done in ${report.durationS} s${args.write ? '; BENCHMARKS.md updated' : ''}`);
  if (profileDir)
    console.log(`cpu profiles in ${profileDir} (summarise with: npx tsx bench/profile-summary.ts <file>)`);
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
  const keys = await cleanUpRun(bench, redis);
  const name = decodeURIComponent(new URL(bench.databaseUrl).pathname.slice(1));
  console.log(`cleaned up: ${keys} Redis keys under ${bench.prefix}:, database ${name}`);
}

await main();
