// What the broker holds in Redis, measured on its own keys only (every key under the run's prefix, MEMORY USAGE
// with every element sampled), so other users of the same Redis do not blur the figure. Grouped by what a key is
// for, as its name says (keys.ts is the one place names are made).
import type { Redis } from 'ioredis';

export interface Footprint {
  keys: number;
  bytes: number;
  /** Bytes and keys per kind of key ("log", "req", "inbox", …). */
  byKind: Record<string, { keys: number; bytes: number }>;
}

/** The kind of a broker key: the last segment of its name that says what it holds. */
export function kindOf(key: string): string {
  if (key.includes(':req:')) return 'req (per-req_id records)';
  if (key.includes(':req-filter:')) return 'req-filter';
  const last = key.slice(key.lastIndexOf(':') + 1);
  if (key.includes('{retries}')) return 'bullmq';
  return last;
}

export async function footprintOf(redis: Redis, prefix: string): Promise<Footprint> {
  const result: Footprint = { keys: 0, bytes: 0, byKind: {} };
  for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<
    string[]
  >) {
    if (batch.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', 0);
    const replies = (await pipeline.exec()) ?? [];
    batch.forEach((key, i) => {
      const bytes = Number(replies[i]?.[1] ?? 0); // a key gone between SCAN and MEMORY USAGE answers null
      const kind = kindOf(key);
      const entry = result.byKind[kind] ?? { keys: 0, bytes: 0 };
      entry.keys += 1;
      entry.bytes += bytes;
      result.byKind[kind] = entry;
      result.keys += 1;
      result.bytes += bytes;
    });
  }
  return result;
}

/** "log 1.2 MB (16 keys), req 40 kB (1 key)" — the kinds by size, largest first. */
export function describeFootprint(footprint: Footprint): string {
  return Object.entries(footprint.byKind)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([kind, v]) => `${kind} ${formatBytes(v.bytes)} (${v.keys} key${v.keys === 1 ? '' : 's'})`)
    .join(', ');
}

export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (Math.abs(bytes) >= 1e6) return `${(bytes / 1e6).toFixed(2)} MB`;
  if (Math.abs(bytes) >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${Math.round(bytes)} B`;
}
