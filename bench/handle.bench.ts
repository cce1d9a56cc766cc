// The price of a handle (issue 20, SPEC §10): shops with two cashiers and a waiter; each waiter's requests are
// delivered to both cashiers first, then cashier 1 handles them at a steady rate while cashier 2 waits for the
// `handled` notice. Measures handle → notice received at the other cashier (p50/p99), the handle reply time, and
// the CPU per handle of the broker processes, Redis and PostgreSQL. Run: `npx tsx bench/handle.bench.ts [rate=250]
// [seconds=20] [shops=50]` (also run by `npm run bench` with the other bench files).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { DeviceClient } from '#client';
import { Broker, benchEnv, cleanUpRun } from './lib/broker';
import { killAll } from './lib/children';
import { cpuBetween, cpuSnapshot } from './lib/cpu';
import { registerShops } from './lib/fleet';
import { loadAverage } from './lib/machine';
import { cpuMsPerNotify } from './lib/report';
import { closeShops, connectShops, Disruptions, notifyInput } from './lib/shops';
import { Samples } from './lib/stats';
import { waitUntil } from './lib/wait';

export async function runHandleBench(rate: number, seconds: number, shopCount: number) {
  const runId = Date.now().toString(36);
  const bench = benchEnv(runId, mkdtempSync(join(tmpdir(), `broker-handle-${runId}-`)), null);
  const redis = new Redis(bench.redisUrl, { connectionName: 'bench-handle' });
  const broker = await Broker.start(bench);
  try {
    const specs = await registerShops(bench, 'hd', shopCount);
    const shops = await connectShops(broker.edgeUrl, specs, new Disruptions());
    const perShop = Math.ceil((rate * seconds) / shopCount) + 1;
    // Requests delivered to both cashiers (auto-acked), by shop.
    const requests: string[][] = shops.map(() => []);
    const received = { count: 0 };
    for (const shop of shops) for (const main of shop.mains) main.on('message', () => void received.count++);
    await Promise.all(
      shops.map(async (shop, s) => {
        for (let i = 0; i < perShop; i++) {
          const { event_id } = await shop.sub.notify(notifyInput(`hd-${s}-${i}`, i, performance.now()));
          requests[s]!.push(event_id);
        }
      }),
    );
    const total = perShop * shops.length;
    if (!(await waitUntil(() => received.count >= total * 2, 60_000, 50)))
      throw new Error('the requests did not reach both cashiers');

    const sentAt = new Map<string, number>();
    const toNotice = new Samples();
    const toReply = new Samples();
    let conflicts = 0;
    for (const shop of shops) {
      (shop.mains[1] as DeviceClient).on('handled', (notice: { event_id: string }) => {
        const t = sentAt.get(notice.event_id);
        if (t !== undefined) toNotice.add(performance.now() - t);
      });
    }
    const pids = Object.fromEntries(broker.processes().map((p) => [p.name, p.pid]));
    const cpu0 = await cpuSnapshot(pids, redis, broker.database);
    const t0 = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(rate * seconds, Math.floor(((performance.now() - t0) / 1000) * rate));
        for (; sent < due; sent++) {
          const s = sent % shops.length;
          const requestId = requests[s]![Math.floor(sent / shops.length)]!;
          const started = performance.now();
          sentAt.set(requestId, started);
          shops[s]!.mains[0]!.handle(`${requestId}.main-1`, 1).then((outcome) => {
            toReply.add(performance.now() - started);
            if (!outcome.ok) conflicts++;
          });
        }
        if (sent >= rate * seconds) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const windowMs = performance.now() - t0;
    const cpu = cpuBetween(cpu0, await cpuSnapshot(pids, redis, broker.database), windowMs);
    await waitUntil(() => toNotice.count >= sent, 30_000, 50);
    await closeShops(shops);
    return {
      rate,
      seconds,
      shops: shopCount,
      handles: sent,
      conflicts,
      notices: toNotice.count,
      toNotice: toNotice.summary(),
      toReply: toReply.summary(),
      cpuMsPerHandle: cpuMsPerNotify(cpu, sent / (windowMs / 1000)),
      cores: cpu.cores,
      load: loadAverage(),
    };
  } finally {
    await broker.stop();
    await cleanUpRun(bench, redis);
    redis.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [rate = 250, seconds = 20, shops = 50] = process.argv.slice(2).map(Number);
  try {
    const r = await runHandleBench(rate, seconds, shops);
    const ms = (v: number) => v.toFixed(1);
    console.log(`handle: ${r.handles} handles at ${r.rate}/s over ${r.shops} shops (load ${r.load})`);
    console.log(
      `  handle → notice at the other cashier: p50 ${ms(r.toNotice.p50)} ms, p99 ${ms(r.toNotice.p99)} ms (${r.notices} notices)`,
    );
    console.log(
      `  handle → reply: p50 ${ms(r.toReply.p50)} ms, p99 ${ms(r.toReply.p99)} ms; conflicts ${r.conflicts}`,
    );
    console.log(
      `  CPU per handle (broker, Redis, PostgreSQL): ${r.cpuMsPerHandle} ms; cores ${JSON.stringify(r.cores)}`,
    );
  } finally {
    await killAll();
  }
}
