// The broker under test, as child processes of `bin/broker.mjs start <service>` with the benchmark's own Redis
// prefix and database, so a run never touches anyone else's keys or rows. Optionally under `--cpu-prof`.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { delay, dropDatabase } from '#runtime';
import { track } from './children';

export type ServiceName = 'edge' | 'persister' | 'dispatcher';

export interface BenchEnv {
  /** Shared by every process of the run. */
  env: Record<string, string>;
  redisUrl: string;
  databaseUrl: string;
  prefix: string;
  tokenSecret: string;
  workDir: string;
  /** Directory for `--cpu-prof` output, or null when not profiling. */
  profileDir: string | null;
}

export interface BrokerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** The /readyz, /metrics origin of the process. */
  readonly healthUrl: string;
  stop(): Promise<void>;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function benchEnv(
  runId: string,
  workDir: string,
  profileDir: string | null,
  urls: { redisUrl?: string; databaseUrl?: string } = {},
): BenchEnv {
  const redisUrl = urls.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const base = new URL(
    urls.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  );
  base.pathname = `/broker_bench_${runId}`;
  const prefix = `bench-${runId}`;
  const tokenSecret = 'benchmark-device-token-secret-0123456789';
  return {
    redisUrl,
    databaseUrl: base.toString(),
    prefix,
    tokenSecret,
    workDir,
    profileDir,
    env: {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn', // one info line per login would be measured as much as the login itself
      REDIS_URL: redisUrl,
      // A Redis Cluster for the services and the bench's own registrations alike (Redis's CPU and commands in the
      // report are still read from REDIS_URL's server alone).
      ...(process.env.REDIS_CLUSTER_NODES ? { REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES } : {}),
      REDIS_PREFIX: prefix,
      DATABASE_URL: base.toString(),
      DEVICE_TOKEN_SECRET: tokenSecret,
      API_KEYS: 'bench-key',
      EDGE_HOST: '127.0.0.1',
      // The load is many frames per device: lift the per-connection rate limit out of the way.
      EDGE_RATE_PER_S: '1000000',
      EDGE_RATE_BURST: '1000000',
      EDGE_DRAIN_MS: '500',
    },
  };
}

/** Starts one service and waits until its /readyz answers 200. */
export async function startService(
  bench: BenchEnv,
  service: ServiceName,
  label: string,
  extra: { env?: Record<string, string>; nodeArgs?: string[]; port?: number } = {},
): Promise<BrokerProcess> {
  const port = extra.port ?? (await freePort()); // an edge restarted on its old port gets its devices back
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>), // a child inherits PATH, HOME…; undefined entries are not sent
    ...bench.env,
    ...(service === 'edge' ? { EDGE_PORT: String(port), EDGE_ID: label } : { HEALTH_PORT: String(port) }),
    ...extra.env,
  };
  const nodeArgs = [
    // One directory per process: the tsx loader thread writes a profile of its own beside the main thread's.
    ...(bench.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(bench.profileDir, label)}`] : []),
    ...(extra.nodeArgs ?? []),
  ];
  const child = track(
    spawn(process.execPath, [...nodeArgs, 'bin/broker.mjs', 'start', service], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const log = createWriteStream(join(bench.workDir, `${label}.log`), { flags: 'a' });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const healthUrl = `http://127.0.0.1:${port}`;
  await waitReady(healthUrl, child, label);
  return {
    name: label,
    pid: child.pid ?? 0,
    port,
    healthUrl,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const code = await Promise.race([exited, delay(30_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

async function waitReady(healthUrl: string, child: ChildProcess, label: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${label} exited with ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${healthUrl}/readyz`);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet: the next poll asks again
    }
    await delay(100);
  }
  throw new Error(`${label} not ready after 60 s (see its log in the run directory)`);
}

/** One sample of a Prometheus metric (sum over label sets when several match). */
export async function metricOf(healthUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${healthUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The broker of a run: one edge, one dispatcher, one persister, each its own process. */
export class Broker {
  private constructor(
    readonly edge: BrokerProcess,
    readonly dispatcher: BrokerProcess,
    readonly persister: BrokerProcess,
    /** The run's database name. */
    readonly database: string,
  ) {}

  static async start(bench: BenchEnv): Promise<Broker> {
    // The persister first: it creates the database and applies the schema.
    const persister = await startService(bench, 'persister', 'persister');
    const dispatcher = await startService(bench, 'dispatcher', 'dispatcher');
    const edge = await startService(bench, 'edge', 'edge-1');
    return new Broker(edge, dispatcher, persister, new URL(bench.databaseUrl).pathname.slice(1));
  }

  get edgeUrl(): string {
    return `ws://127.0.0.1:${this.edge.port}/ws`;
  }

  processes(): BrokerProcess[] {
    return [this.edge, this.dispatcher, this.persister];
  }

  async stop(): Promise<void> {
    await this.edge.stop();
    await Promise.all([this.dispatcher.stop(), this.persister.stop()]);
  }
}

/** Drops the run's database and every key under its prefix; answers how many keys went. */
export async function cleanUpRun(bench: BenchEnv, redis: Redis): Promise<number> {
  let keys = 0;
  for await (const batch of redis.scanStream({ match: `${bench.prefix}:*`, count: 1000 }) as AsyncIterable<
    string[]
  >) {
    if (batch.length > 0) keys += await redis.unlink(...batch);
  }
  await dropDatabase(bench.databaseUrl);
  return keys;
}
