// The notify script's own price in Redis (issue 19 put the req_id records' window and the shard's filters on the
// hot path): N notifies from the subs of S shops (two mains each, none online), appended in-process with
// EventLog.appendNotify as the edge calls it, 16 in flight, on the local Redis under the run's own prefix. Prints
// Redis's CPU per notify (INFO used_cpu_*, the whole server, so run it on a quiet Redis) and the rate; the µs
// INFO commandstats counts inside each EVALSHA is wall time, which a busy machine inflates. The records' window
// is W seconds and every event counts as archived (as the persister's retention says once it has them), so after
// W seconds each bucket holds what a steady state at this rate holds. No PostgreSQL: a req_id the filters take
// for a resend is answered "not in the archive" at no cost (~0.4 % of new req_ids).
// With pace_ms > 0 the notifies go one at a time, pace_ms apart: a lightly loaded broker's Redis, which sleeps
// between scripts and pays for it (cold caches: the same script costs ~3× its back-to-back price at 4 ms apart).
// Run: `npx tsx bench/notify-script.bench.ts [notifies=30000] [shops=100] [window_s=5] [pace_ms=0]`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EventLog } from '#eventlog';
import { createEvent, Keys } from '#events';
import { loadConfig } from '#runtime';
import { benchEnv, cleanUpRun } from './lib/broker';
import { redisStats } from './lib/cpu';
import { registerShops } from './lib/fleet';

const IN_FLIGHT = 16;

async function main() {
  const [notifies = 30_000, shopCount = 100, windowS = 5, paceMs = 0] = process.argv.slice(2).map(Number);
  const inFlight = paceMs > 0 ? 1 : IN_FLIGHT;
  const runId = Date.now().toString(36);
  const bench = benchEnv(runId, mkdtempSync(join(tmpdir(), `broker-notify-script-${runId}-`)), null);
  const { config } = loadConfig(bench.env);
  const redis = new Redis(bench.redisUrl, { connectionName: 'bench-notify-script' });
  const keys = new Keys(config.redis.prefix, config.shards);
  try {
    const shops = await registerShops(bench, 'ns', shopCount);
    // Everything counts as archived, so the window alone decides when a record leaves (versions before the
    // window have no such key).
    if ('archivedThrough' in keys) {
      for (const shard of keys.allShards())
        await redis.set(keys.archivedThrough(shard), String(Date.now() * 2));
    }
    const log = new EventLog(redis, keys, { archive: async () => null, reqWindowS: windowS });
    let sent = 0;
    const before = await redisStats(redis);
    const t0 = performance.now();
    const sender = async () => {
      while (sent < notifies) {
        const n = sent++;
        const shop = shops[n % shops.length]!;
        const event = createEvent({
          type: 'NotifyRequested',
          shopId: shop.shopId,
          source: 'edge:bench',
          data: {
            req_id: `r-${n}`,
            from_client_id: shop.sub.clientId,
            from_type: 'sub',
            audience: 'mains',
            recipients: [],
            table_id: String(n % 40),
            type: 'add_dish',
            status: 0,
            data: { dish: 'noodles', qty: 1 },
            user_info: {},
          },
        });
        await log.appendNotify(event, { tokenId: '', type: 'sub' });
        if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
      }
    };
    await Promise.all(Array.from({ length: inFlight }, sender));
    const seconds = (performance.now() - t0) / 1000;
    const after = await redisStats(redis);
    const evalsha = (stats: typeof before) => stats.commands.evalsha ?? [0, 0];
    const calls = evalsha(after)[0] - evalsha(before)[0];
    console.log(
      `notify script: ${notifies} notifies over ${shopCount} shops in ${seconds.toFixed(1)} s ` +
        `(${Math.round(notifies / seconds)}/s, ${paceMs > 0 ? `one at a time, ${paceMs} ms apart` : `${inFlight} in flight`}), ` +
        `window ${windowS} s: ` +
        `Redis CPU ${(((after.cpuS - before.cpuS) * 1e6) / notifies).toFixed(1)} µs per notify; ` +
        `${((evalsha(after)[1] - evalsha(before)[1]) / calls).toFixed(1)} µs inside each of ${calls} calls (wall)`,
    );
  } finally {
    await cleanUpRun(bench, redis);
    redis.disconnect();
  }
}

await main();
