// Where the CPU went during a measurement window: each broker process, Redis, PostgreSQL and the load generator,
// in cores (CPU seconds per wall second), the whole machine and what other work took; and, for our processes, how
// long their JavaScript thread waited for a CPU (run-queue time from schedstat), which tells a starved process
// from an idle one. Redis is shared with other work on the machine; PostgreSQL counts only our database's backends.
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import type { RedisClient } from '#runtime';
import { cpuSecondsOf } from './machine';

export interface CpuSnapshot {
  cpu: Record<string, number>;
  wait: Record<string, number>;
  /** Redis INFO commandstats: command → [calls, µs]. */
  redisCommands: Record<string, [number, number]>;
}

export interface CpuUse {
  /** Cores used (CPU seconds per second of the window). */
  cores: Record<string, number>;
  /** Cores' worth of time spent runnable but waiting for a CPU. */
  waiting: Record<string, number>;
  /** The Redis commands that took most of Redis's time in the window: calls/s and share of Redis busy time. */
  redisTop: Array<{ command: string; callsPerS: number; cores: number }>;
}

/** Seconds the main (JavaScript) thread of a process spent runnable, waiting for a CPU. */
function waitSecondsOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
}

/** CPU seconds the whole machine spent busy (all but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ
}

/** The `application_name` of the benchmark's own PostgreSQL connections (see `benchPool`). */
const BENCH_APPLICATION = 'broker-bench';

/**
 * A pool for the benchmark's own queries (projection polling, row counts). Its backends are named, so the CPU
 * they cost PostgreSQL is counted as "bench queries", not as the broker's.
 */
export function benchPool(databaseUrl: string, max: number): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max, application_name: BENCH_APPLICATION });
}

/**
 * Redis's CPU seconds (INFO used_cpu_*: the whole server) and, per command, its calls and the µs inside them
 * (INFO commandstats: wall time, which counts a Redis preempted by other work too).
 */
export async function redisStats(
  redis: Pick<RedisClient, 'info'>,
): Promise<{ cpuS: number; commands: Record<string, [number, number]> }> {
  const text = await redis.info('all');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  const commands: Record<string, [number, number]> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands[match[1]!] = [Number(match[2]), Number(match[3])];
  }
  return { cpuS: field('used_cpu_user') + field('used_cpu_sys'), commands };
}

/** `pool`: the benchmark's own pool (`benchPool`), whose backends are told apart from the broker's. */
export async function cpuSnapshot(
  pids: Record<string, number>,
  redis: RedisClient,
  database: string,
  pool?: pg.Pool,
): Promise<CpuSnapshot> {
  const cpu: Record<string, number> = {};
  const wait: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    cpu[name] = cpuSecondsOf(pid);
    wait[name] = waitSecondsOf(pid);
  }
  const usage = process.cpuUsage();
  cpu['load generator'] = (usage.user + usage.system) / 1e6;
  wait['load generator'] = waitSecondsOf(process.pid);
  const { cpuS, commands: redisCommands } = await redisStats(redis);
  cpu.redis = cpuS;
  const ownBackends = pool
    ? (
        await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
          BENCH_APPLICATION,
        ])
      ).rows.map((r) => r.pid)
    : [];
  Object.assign(cpu, postgresCpuSeconds(database, new Set(ownBackends)));
  cpu.machine = machineBusySeconds();
  return { cpu, wait, redisCommands };
}

/** What each part used between two snapshots taken `ms` apart. */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot, ms: number): CpuUse {
  const perSecond = (a: Record<string, number>, b: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const name of Object.keys(b))
      out[name] = Math.round((((b[name] ?? 0) - (a[name] ?? 0)) / (ms / 1000)) * 100) / 100;
    return out;
  };
  const all = perSecond(before.cpu, after.cpu);
  // Backends are summed into one "postgres" figure (the benchmark's own into "bench queries"); one that started
  // inside the window counts from zero.
  const cores: Record<string, number> = {};
  for (const [name, used] of Object.entries(all)) {
    const key = name.startsWith('postgres:')
      ? 'postgres'
      : name.startsWith('bench:')
        ? 'bench queries'
        : name;
    const value =
      /^(postgres|bench):/.test(name) && before.cpu[name] === undefined
        ? (after.cpu[name] ?? 0) / (ms / 1000)
        : used;
    cores[key] = Math.round(((cores[key] ?? 0) + value) * 100) / 100;
  }
  // Everything else the machine did meanwhile: other people's work on the same cores.
  const ours = Object.entries(cores).reduce(
    (sum, [name, used]) => (name === 'machine' ? sum : sum + used),
    0,
  );
  cores['other work'] = Math.max(0, Math.round(((cores.machine ?? 0) - ours) * 100) / 100);
  const redisTop = Object.entries(after.redisCommands)
    .map(([command, [calls, us]]) => {
      const [calls0, us0] = before.redisCommands[command] ?? [0, 0];
      return {
        command,
        callsPerS: Math.round((calls - calls0) / (ms / 1000)),
        cores: Math.round(((us - us0) / 1e6 / (ms / 1000)) * 1000) / 1000,
      };
    })
    .sort((a, b) => b.cores - a.cores)
    .slice(0, 6);
  return { cores, waiting: perSecond(before.wait, after.wait), redisTop };
}

/**
 * CPU seconds of the PostgreSQL backends serving our database (their process title names it), one entry per
 * backend, the benchmark's own (`ownBackends`) under "bench:": a backend present in only one snapshot counts from
 * zero or is dropped, so no delta goes negative.
 */
function postgresCpuSeconds(database: string, ownBackends: ReadonlySet<number>): Record<string, number> {
  const backends: Record<string, number> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(` ${database} `)) continue;
      const pid = Number(entry);
      backends[`${ownBackends.has(pid) ? 'bench' : 'postgres'}:${entry}`] = cpuSecondsOf(pid);
    } catch {
      // the process exited between the listing and the read: it no longer counts
    }
  }
  return backends;
}

/** "evalsha 812/s 0.061 cores, publish …": where Redis spent its time in a window. */
export function describeRedisTop(use: CpuUse): string {
  return use.redisTop.map((c) => `${c.command} ${c.callsPerS}/s ${c.cores} cores`).join(', ');
}
