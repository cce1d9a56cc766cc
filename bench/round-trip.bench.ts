// What one Redis round trip costs the process that makes it, on this machine: the floor under every figure of the
// delivery path, which is a chain of round trips (edge → Redis → dispatcher → Redis → edge). PING on a connection
// of its own, back to back and paced 1 ms apart (the shape of a lightly loaded broker: every write wakes a
// sleeping peer), CPU from process.cpuUsage(). Run alone: `npx tsx bench/round-trip.bench.ts`.
import { Redis } from 'ioredis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function measure(redis: Redis, count: number, gapMs: number): Promise<string> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    await redis.ping();
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  const used = process.cpuUsage(cpu);
  const wallUs = ((performance.now() - start) * 1000) / count;
  const each = (us: number) => (us / count).toFixed(0);
  return `${count} PINGs ${gapMs > 0 ? `paced ${gapMs} ms apart` : 'back to back'}: ${gapMs > 0 ? '' : `${wallUs.toFixed(0)} µs wall, `}client CPU ${each(used.user + used.system)} µs each (user ${each(used.user)}, system ${each(used.system)})`;
}

const redis = new Redis(url, { enableAutoPipelining: false, lazyConnect: true });
await redis.connect();
await redis.ping();
console.log(`round trip to ${url}`);
console.log(`  ${await measure(redis, 20_000, 0)}`);
console.log(`  ${await measure(redis, 2_000, 1)}`);
redis.disconnect();
