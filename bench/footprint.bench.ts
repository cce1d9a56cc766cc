// Redis held per notify (issue 19): one shop, a sub sends N notifies to two mains that ack every one; once every
// message is delivered and its row projected, what the broker's keys hold in Redis is measured (within the
// stream tail), then again after the tail has passed (the bench shortens STREAM_RETENTION_MS to a few seconds so it
// does not wait minutes; the rule is the same). Prints bytes and keys per notify, by kind of key.
// Run: `npx tsx bench/footprint.bench.ts [notifies=5000] [retention_ms=3000]`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Broker, benchEnv, cleanUpRun } from './lib/broker';
import { killAll } from './lib/children';
import { registerShops } from './lib/fleet';
import { describeFootprint, type Footprint, footprintOf, formatBytes } from './lib/footprint';
import { closeShops, connectShops, Disruptions, notifyInput } from './lib/shops';
import { waitUntil } from './lib/wait';
import { deliveredRows } from './throughput.bench';

const IN_FLIGHT = 8;

export interface FootprintResult {
  notifies: number;
  retentionMs: number;
  baseline: Footprint;
  withinTail: Footprint;
  afterTail: Footprint;
  bytesPerNotifyWithinTail: number;
  bytesPerNotifyAfterTail: number;
  keysPerNotifyAfterTail: number;
}

export async function runFootprint(notifies: number, retentionMs: number): Promise<FootprintResult> {
  const runId = Date.now().toString(36);
  const bench = benchEnv(runId, mkdtempSync(join(tmpdir(), `broker-footprint-${runId}-`)), null);
  bench.env.STREAM_RETENTION_MS = String(retentionMs);
  const redis = new Redis(bench.redisUrl, { connectionName: 'bench-footprint' });
  const broker = await Broker.start(bench);
  const pool = new pg.Pool({ connectionString: bench.databaseUrl, max: 2 });
  try {
    const [spec] = await registerShops(bench, 'fp', 1);
    if (!spec) throw new Error('no shop registered');
    const [shop] = await connectShops(broker.edgeUrl, [spec], new Disruptions());
    if (!shop) throw new Error('no shop connected');
    const baseline = await footprintOf(redis, bench.prefix);

    let sent = 0;
    const sender = async () => {
      while (sent < notifies) {
        const n = ++sent;
        await shop.sub.notify(notifyInput(`fp-${n}`, n, performance.now()));
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
    const projected = await waitUntil(async () => (await deliveredRows(pool)) >= notifies * 2, 120_000, 200);
    if (!projected) throw new Error('not every message was delivered and projected within 120 s');
    const withinTail = await footprintOf(redis, bench.prefix);

    // Past the tail: the persister trims on its retention interval (1 s at the shortest).
    const stream = (f: Footprint) => f.byKind.log?.bytes ?? 0;
    await waitUntil(
      async () => stream(await footprintOf(redis, bench.prefix)) <= stream(baseline) + 1024,
      retentionMs + 30_000,
      500,
    );
    const afterTail = await footprintOf(redis, bench.prefix);
    await closeShops([shop]);
    return {
      notifies,
      retentionMs,
      baseline,
      withinTail,
      afterTail,
      bytesPerNotifyWithinTail: (withinTail.bytes - baseline.bytes) / notifies,
      bytesPerNotifyAfterTail: (afterTail.bytes - baseline.bytes) / notifies,
      keysPerNotifyAfterTail: (afterTail.keys - baseline.keys) / notifies,
    };
  } finally {
    await pool.end();
    await broker.stop();
    await cleanUpRun(bench, redis);
    redis.disconnect();
  }
}

export function printFootprint(r: FootprintResult): void {
  console.log(
    `footprint: 1 shop, ${r.notifies} notifies from a sub to 2 mains, every message acked and projected`,
  );
  console.log(
    `  baseline (devices registered and online): ${formatBytes(r.baseline.bytes)} in ${r.baseline.keys} keys`,
  );
  console.log(
    `  within the tail: +${formatBytes(r.withinTail.bytes - r.baseline.bytes)} = ${Math.round(r.bytesPerNotifyWithinTail)} B per notify — ${describeFootprint(r.withinTail)}`,
  );
  console.log(
    `  after the tail (STREAM_RETENTION_MS=${r.retentionMs}): +${formatBytes(r.afterTail.bytes - r.baseline.bytes)} = ${Math.round(r.bytesPerNotifyAfterTail)} B and ${r.keysPerNotifyAfterTail.toFixed(3)} keys per notify — ${describeFootprint(r.afterTail)}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const notifies = Number(process.argv[2] ?? 5000);
  const retentionMs = Number(process.argv[3] ?? 3000);
  try {
    printFootprint(await runFootprint(notifies, retentionMs));
  } finally {
    await killAll();
  }
}
