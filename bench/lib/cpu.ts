// Where the CPU went during a measurement window: each broker process, Redis, PostgreSQL and the load generator,
// in cores (CPU seconds per wall second). Redis and PostgreSQL are shared with other work on the machine.
import { readdirSync, readFileSync } from 'node:fs';
import type { RedisClient } from '#runtime';
import { cpuSecondsOf } from './machine';

export type CpuSnapshot = Record<string, number>;

export async function cpuSnapshot(pids: Record<string, number>, redis: RedisClient): Promise<CpuSnapshot> {
  const snapshot: CpuSnapshot = {};
  for (const [name, pid] of Object.entries(pids)) snapshot[name] = cpuSecondsOf(pid);
  const usage = process.cpuUsage();
  snapshot['load generator'] = (usage.user + usage.system) / 1e6;
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  snapshot.redis = field('used_cpu_user') + field('used_cpu_sys');
  snapshot.postgres = postgresCpuSeconds();
  return snapshot;
}

/** Cores used by each part between two snapshots taken `ms` apart. */
export function coresBetween(before: CpuSnapshot, after: CpuSnapshot, ms: number): Record<string, number> {
  const cores: Record<string, number> = {};
  for (const name of Object.keys(after)) {
    cores[name] = Math.round((((after[name] ?? 0) - (before[name] ?? 0)) / (ms / 1000)) * 100) / 100;
  }
  return cores;
}

/** CPU seconds of every live process named postgres (backends that exited meanwhile are not counted). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      total += cpuSecondsOf(Number(entry));
    } catch {
      // the process exited between the listing and the read: it no longer counts
    }
  }
  return total;
}
