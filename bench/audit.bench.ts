// `broker audit` at a chain's size: builds a log of many busy shops (default ~1,000,000 events, 500 per shop)
// into a fresh database with the real persister, trims the streams to a tail (5 % of each, as retention leaves
// them), then runs the real `broker audit` as a child process and reports its seconds and its peak RSS (VmHWM of
// the child, read by the child itself from /proc/self/status as it exits). `--before <bin/broker.mjs>` audits the
// same log with another build too (the code before a change), for a before/after at one size.
// Run: `npx tsx bench/audit.bench.ts [events] [--before /path/to/bin/broker.mjs]`. Heavy: run it once.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { encodeEvent, Keys } from '#events';
import { start } from '#persister';
import { createLogger, dropDatabase, loadConfig } from '#runtime';
import { busyShopOps, shopLog } from '../test/support/shop-log';
import { loadAverage, machine } from './lib/machine';

const BIN = fileURLToPath(new URL('../bin/broker.mjs', import.meta.url));
const SHARDS = 16;
const EVENTS_PER_SHOP = 500;
const SHOPS_PER_APPEND = 20;
const TAIL_SHARE = 0.05;

export interface AuditRun {
  bin: string;
  seconds: number;
  peakRssMiB: number;
  summary: string;
}

export interface AuditBenchResult {
  events: number;
  shops: number;
  tail: number;
  buildSeconds: number;
  runs: AuditRun[];
}

export async function runAuditBench(targetEvents: number, bins: string[]): Promise<AuditBenchResult> {
  const runId = Date.now().toString(36);
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const url = new URL(base);
  url.pathname = `/broker_bench_audit_${runId}`;
  const env = {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench-audit-${runId}`,
    DATABASE_URL: url.toString(),
    SHARDS: String(SHARDS),
    CONSUMER_BATCH: '1000',
    LOG_LEVEL: 'warn',
    HEALTH_PORT: '0',
  };
  const { config } = loadConfig(env);
  const redis = new Redis(env.REDIS_URL, { connectionName: 'bench-audit' });
  const keys = new Keys(config.redis.prefix, SHARDS);
  try {
    const startedMs = performance.now();
    const shops = Math.max(1, Math.round(targetEvents / EVENTS_PER_SHOP));
    const persister = await start(config, { log: createLogger('warn'), healthServer: false });
    let events = 0;
    for (let first = 0; first < shops; first += SHOPS_PER_APPEND) {
      events += await appendShops(redis, keys, first, Math.min(shops, first + SHOPS_PER_APPEND));
      if (first % 200 === 0) process.stderr.write(`\rbuilt ${events} events`);
    }
    await persister.whenCaughtUp(3_600_000);
    await persister.stop();
    const tail = await trimToTails(redis, keys);
    const buildSeconds = (performance.now() - startedMs) / 1000;
    process.stderr.write(`\rbuilt ${events} events in ${buildSeconds.toFixed(0)} s; ${tail} in the tails\n`);
    const runs: AuditRun[] = [];
    for (const bin of bins) runs.push(await auditWith(bin, env));
    return { events, shops, tail, buildSeconds, runs };
  } finally {
    for await (const batch of redis.scanStream({ match: `${env.REDIS_PREFIX}:*`, count: 1000 })) {
      if (batch.length > 0) await redis.unlink(...batch);
    }
    redis.disconnect();
    await dropDatabase(env.DATABASE_URL);
  }
}

/** Appends shops [first, end) — each a busy day of ~500 events — in one pipeline; answers how many events. */
async function appendShops(redis: Redis, keys: Keys, first: number, end: number): Promise<number> {
  const pipeline = redis.pipeline();
  let n = 0;
  for (let i = first; i < end; i++) {
    const shopId = `shop-${i}`;
    const ops = busyShopOps(Math.round((EVENTS_PER_SHOP - 6) / 3.05));
    for (const event of shopLog(ops, { shopId, startMs: Date.UTC(2025, 0, 1) + i })) {
      pipeline.xadd(keys.streamOfShop(shopId), '*', ...encodeEvent(event));
      n++;
    }
  }
  await pipeline.exec();
  return n;
}

/** XTRIM MINID so each stream keeps its newest 5 %, as retention leaves a tail once the rest is archived. */
async function trimToTails(redis: Redis, keys: Keys): Promise<number> {
  let tail = 0;
  for (const shard of keys.allShards()) {
    const stream = keys.stream(shard);
    const keep = Math.ceil((await redis.xlen(stream)) * TAIL_SHARE);
    if (keep === 0) continue;
    const newest = await redis.xrevrange(stream, '+', '-', 'COUNT', keep);
    const oldestKept = newest[newest.length - 1]?.[0];
    if (oldestKept === undefined) continue;
    await redis.xtrim(stream, 'MINID', oldestKept);
    tail += await redis.xlen(stream);
  }
  return tail;
}

/** Reports the process's peak resident set (VmHWM) on fd 3 as it exits. */
const PEAK_RSS_HOOK = `process.on('exit', () => {
  const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
  require('node:fs').writeSync(3, /^VmHWM:\\s+(\\d+) kB$/m.exec(status)[1] + '\\n');
});`;

async function auditWith(bin: string, env: Record<string, string>): Promise<AuditRun> {
  const hook = join(mkdtempSync(join(tmpdir(), 'audit-bench-')), 'peak-rss.cjs');
  writeFileSync(hook, PEAK_RSS_HOOK);
  await runNode([bin, '--help'], env); // builds that tree's bundle first, outside the timing
  const startedMs = performance.now();
  const { code, stdout, fd3 } = await runNode(['--require', hook, bin, 'audit'], env);
  const seconds = (performance.now() - startedMs) / 1000;
  // A failed audit (a divergence, or out of memory) is a figure too: it is reported, not thrown.
  const last = stdout.trimEnd().split('\n').at(-1) ?? '';
  const summary = code === 0 ? last : `exited ${code}${last ? `: ${last}` : ''}`;
  return { bin, seconds: Math.round(seconds * 10) / 10, peakRssMiB: Math.round(Number(fd3) / 1024), summary };
}

function runNode(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
  });
  let stdout = '';
  let fd3 = '';
  child.stdout!.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stdio[3]!.on('data', (chunk) => {
    fd3 += String(chunk);
  });
  return new Promise<{ code: number | null; stdout: string; fd3: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, fd3: fd3.trim() })),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const beforeAt = args.indexOf('--before');
  const before = beforeAt >= 0 ? args.splice(beforeAt, 2)[1] : undefined;
  const m = machine();
  console.log(
    `machine: ${m.cores} cores ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}; load ${loadAverage()}`,
  );
  const result = await runAuditBench(Number(args[0] ?? 1_000_000), before ? [before, BIN] : [BIN]);
  console.log(
    `audit: ${result.events} events of ${result.shops} shops over ${SHARDS} shards, ${result.tail} of them in the ` +
      `stream tails (built in ${result.buildSeconds.toFixed(0)} s)`,
  );
  for (const run of result.runs) {
    console.log(`  ${run.bin}: ${run.seconds} s, peak RSS ${run.peakRssMiB} MiB — ${run.summary}`);
  }
}
