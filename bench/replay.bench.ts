// Replay and rebuild: how many events per second the operators' tools read back from a history whose older half is
// only in the PostgreSQL archive (the streams were trimmed, as retention does) and whose newer half is in both.
// Builds its own log (~50k events of busy shops), projects it with the real persister, then measures in-process:
// the history alone, replay as JSON lines into /dev/null, rebuild into a fresh database; and the `broker replay`
// and `broker audit` commands end to end (process start included). Run: `npx tsx bench/replay.bench.ts [events]`.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { history } from '#eventlog';
import { type BrokerEvent, compareStreamIds, encodeEvent, Keys } from '#events';
import { start } from '#persister';
import { connectPostgres, createLogger, dropDatabase, loadConfig, type Pool } from '#runtime';
import { rebuildInto } from '../cli/src/commands/rebuild';
import { jsonLines, writeChunks } from '../cli/src/commands/replay';
import { busyShopOps, shopLog } from '../test/support/shop-log';
import { loadAverage, machine } from './lib/machine';

export interface ReplayBenchResult {
  events: number;
  archivedOnly: number;
  shards: number;
  historyPerS: number;
  replayJsonPerS: number;
  rebuildPerS: number;
  /** Events per CPU-second of this process (the reader's own cost, apart from Redis and PostgreSQL). */
  historyPerCpuS: number;
  replayJsonPerCpuS: number;
  rebuildPerCpuS: number;
  cliReplayS: number;
  cliReplayPerS: number;
  cliAuditS: number;
  cliAuditPerS: number;
}

const BIN = fileURLToPath(new URL('../bin/broker.mjs', import.meta.url));
const SHARDS = 16;

export async function runReplayBench(targetEvents = 50_000): Promise<ReplayBenchResult> {
  const runId = Date.now().toString(36);
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const env = {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench-replay-${runId}`,
    DATABASE_URL: databaseUrl(base, `broker_bench_replay_${runId}`),
    SHARDS: String(SHARDS),
    LOG_LEVEL: 'warn',
    API_KEYS: 'bench-key',
    DEVICE_TOKEN_SECRET: 'benchmark-device-token-secret-0123456789',
    HEALTH_PORT: '0',
  };
  const rebuiltUrl = databaseUrl(base, `broker_bench_rebuilt_${runId}`);
  const { config } = loadConfig(env);
  const log = createLogger('warn');
  const redis = new Redis(env.REDIS_URL, { connectionName: 'bench-replay' });
  const keys = new Keys(config.redis.prefix, SHARDS);
  let pool: Pool | undefined;
  let target: Pool | undefined;
  try {
    const events = busyShops(targetEvents);
    const persister = await start(config, { log, healthServer: false });
    const positions = await appendInBatches(redis, keys, events);
    await persister.whenCaughtUp(600_000);
    await persister.stop();
    const archivedOnly = await trimOlderHalves(redis, keys, positions);
    pool = await connectPostgres(env.DATABASE_URL, log);
    const source = { redis, db: pool, keys };

    const [historyS, historyCpuS] = await timed(async () => {
      let n = 0;
      for await (const _ of history(source)) n++;
      if (n !== events.length) throw new Error(`history read ${n} of ${events.length} events`);
    });
    const [replayS, replayCpuS] = await timed(async () => {
      const out = createWriteStream('/dev/null');
      await writeChunks(out, jsonLines(eventsOf(history(source))));
      await new Promise((resolve) => out.end(resolve));
    });
    target = await connectPostgres(rebuiltUrl, log, { max: 6 });
    const [rebuildS, rebuildCpuS] = await timed(async () => {
      const result = await rebuildInto(source, target!, { batch: 1000, log });
      if (result.events !== events.length) throw new Error(`rebuilt ${result.events} of ${events.length}`);
    });
    const [cliReplayS] = await timed(() => runCli(['replay'], env));
    const [cliAuditS] = await timed(() => runCli(['audit'], env));
    const perS = (seconds: number) => Math.round(events.length / seconds);
    return {
      events: events.length,
      archivedOnly,
      shards: SHARDS,
      historyPerS: perS(historyS),
      replayJsonPerS: perS(replayS),
      rebuildPerS: perS(rebuildS),
      historyPerCpuS: perS(historyCpuS),
      replayJsonPerCpuS: perS(replayCpuS),
      rebuildPerCpuS: perS(rebuildCpuS),
      cliReplayS: round(cliReplayS),
      cliReplayPerS: perS(cliReplayS),
      cliAuditS: round(cliAuditS),
      cliAuditPerS: perS(cliAuditS),
    };
  } finally {
    await pool?.end();
    await target?.end();
    for await (const batch of redis.scanStream({ match: `${env.REDIS_PREFIX}:*`, count: 1000 })) {
      if (batch.length > 0) await redis.unlink(...batch);
    }
    redis.disconnect();
    await dropDatabase(env.DATABASE_URL);
    await dropDatabase(rebuiltUrl);
  }
}

export function printReplayBench(r: ReplayBenchResult): void {
  console.log(
    `replay: ${r.events} events over ${r.shards} shards, ${r.archivedOnly} of them only in the archive (streams trimmed)`,
  );
  console.log(
    `  history read ${r.historyPerS} events/s   replay as JSON lines ${r.replayJsonPerS} events/s   rebuild ${r.rebuildPerS} events/s`,
  );
  console.log(
    `  per CPU-second of the reading process: history ${r.historyPerCpuS}   replay ${r.replayJsonPerCpuS}   rebuild ${r.rebuildPerCpuS}`,
  );
  console.log(
    `  \`broker replay > /dev/null\` ${r.cliReplayS} s (${r.cliReplayPerS} events/s)   \`broker audit\` ${r.cliAuditS} s (${r.cliAuditPerS} events/s), process start included`,
  );
}

/** Busy shops (two mains, a sub, every notify acked) until the log holds about `target` events. */
function busyShops(target: number): BrokerEvent[] {
  const perShop = 1000;
  const shops = Math.max(1, Math.round(target / perShop));
  return Array.from({ length: shops }, (_, i) =>
    shopLog(busyShopOps(Math.round((perShop - 6) / 3.05)), {
      shopId: `shop-${i}`,
      startMs: Date.UTC(2025, 0, 1) + i,
    }),
  ).flat();
}

async function appendInBatches(redis: Redis, keys: Keys, events: BrokerEvent[]) {
  const positions: Array<{ shard: number; streamId: string }> = [];
  for (let i = 0; i < events.length; i += 5000) {
    const pipeline = redis.pipeline();
    const slice = events.slice(i, i + 5000);
    for (const event of slice) pipeline.xadd(keys.streamOfShop(event.shop_id), '*', ...encodeEvent(event));
    const replies = (await pipeline.exec()) ?? [];
    slice.forEach((event, j) => {
      positions.push({ shard: keys.shardOf(event.shop_id), streamId: String(replies[j]![1]) });
    });
  }
  return positions;
}

/** XTRIM MINID at the middle of each stream, as retention does once the older half is archived. */
async function trimOlderHalves(
  redis: Redis,
  keys: Keys,
  positions: Array<{ shard: number; streamId: string }>,
) {
  let trimmed = 0;
  for (const shard of keys.allShards()) {
    const ids = positions
      .filter((p) => p.shard === shard)
      .map((p) => p.streamId)
      .sort(compareStreamIds);
    if (ids.length < 2) continue;
    trimmed += await redis.xtrim(keys.stream(shard), 'MINID', ids[Math.floor(ids.length / 2)]!);
  }
  return trimmed;
}

async function* eventsOf(entries: AsyncIterable<{ event: BrokerEvent }>) {
  for await (const entry of entries) yield entry.event;
}

function runCli(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`broker ${args[0]} exited ${code}`)),
    );
  });
}

/** Wall-clock seconds, and CPU seconds of this process, that a task took. */
async function timed(task: () => Promise<void>): Promise<[number, number]> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  await task();
  const used = process.cpuUsage(cpu);
  return [(performance.now() - started) / 1000, (used.user + used.system) / 1e6];
}

function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}

function databaseUrl(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const m = machine();
  console.log(
    `machine: ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}; load ${loadAverage()}`,
  );
  printReplayBench(await runReplayBench(Number(process.argv[2] ?? 50_000)));
}
