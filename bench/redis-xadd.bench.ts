// The Redis ceiling: how many XADDs per second the local Redis takes from redis-benchmark (50 clients), one
// command per round trip and 16 pipelined, on a key under the run's prefix that is deleted afterwards.
import { spawnSync } from 'node:child_process';
import type { Redis } from 'ioredis';
import type { BenchEnv } from './lib/broker';

export interface RedisXaddResult {
  version: string;
  requests: number;
  clients: number;
  xaddPerS: number;
  xaddPipelinedPerS: number;
  appendonly: string;
}

const CLIENTS = 50;

function benchmark(bench: BenchEnv, key: string, requests: number, pipeline: number): number {
  const url = new URL(bench.redisUrl);
  const args = ['-h', url.hostname, '-p', url.port || '6379', '-c', String(CLIENTS), '-n', String(requests)];
  args.push('-P', String(pipeline), '-q', 'XADD', key, '*', 'f', 'v');
  const run = spawnSync('redis-benchmark', args, { encoding: 'utf8', timeout: 300_000 });
  // With -q the last report line reads "XADD …: 61199.51 requests per second, p50=0.727 msec".
  const match = /([\d.]+) requests per second/.exec(run.stdout.split('\r').pop() ?? '');
  if (!match) throw new Error(`redis-benchmark gave no rate: ${run.stdout.slice(-200)} ${run.stderr}`);
  return Math.round(Number(match[1]));
}

export async function runRedisXadd(
  bench: BenchEnv,
  redis: Redis,
  requests: number,
): Promise<RedisXaddResult> {
  const key = `${bench.prefix}:xadd:{x}`;
  try {
    const xaddPerS = benchmark(bench, key, requests, 1);
    const xaddPipelinedPerS = benchmark(bench, key, requests, 16);
    const info = await redis.info('server');
    const appendonly = ((await redis.config('GET', 'appendonly')) as string[])[1] ?? 'unknown';
    return {
      version: /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown',
      requests,
      clients: CLIENTS,
      xaddPerS,
      xaddPipelinedPerS,
      appendonly,
    };
  } finally {
    await redis.del(key);
  }
}

export function printRedisXadd(result: RedisXaddResult): void {
  console.log(
    `redis ${result.version} (appendonly ${result.appendonly}) XADD, ${result.clients} clients, ${result.requests} requests: ${result.xaddPerS}/s one per round trip, ${result.xaddPipelinedPerS}/s pipelined 16`,
  );
}
