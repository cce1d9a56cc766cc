// A whole broker as child processes (`broker start <service>`), so a fault test can SIGKILL any part and start
// it again on the same port and id: two edges behind a round-robin balancer, a persister, a dispatcher and an
// api. Optional TCP proxies put PostgreSQL (persister and api) or Redis (the edges) on a path the test can cut.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Env } from '#runtime';
import { type SpawnedService, spawnService, type TestContext, waitForLog } from '#test-support';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy';
import { type Balancer, startBalancer } from './balancer';

export type ServiceName = 'edge-a' | 'edge-b' | 'persister' | 'dispatcher' | 'api';
export const ALL_SERVICES: readonly ServiceName[] = ['edge-a', 'edge-b', 'persister', 'dispatcher', 'api'];

export interface ClusterOptions {
  /** Persister and api reach PostgreSQL through a proxy the test can cut. */
  cutPostgres?: boolean;
  /** The edges reach Redis through a proxy the test can cut (not with a Redis Cluster). */
  cutRedisForEdges?: boolean;
  /** Which edges the balancer sends new connections to at first (default both). */
  balanced?: ReadonlyArray<'edge-a' | 'edge-b'>;
  /** The services to run (default all); a case that needs no api or second edge saves their start. */
  services?: readonly ServiceName[];
  /** Variables for every service, over the fault suite's defaults. */
  env?: Env;
}

/**
 * Timers short enough for a bounded run: re-pushes from 200 ms, capped at 1 s, with a budget (30 pushes) that
 * outlasts every outage the suite injects, so a message waits for its device rather than failing for good.
 */
const FAULT_ENV: Env = {
  LOG_LEVEL: 'info',
  EDGE_RATE_PER_S: '1000',
  EDGE_RATE_BURST: '2000',
  DELIVERY_RETRY_FIRST_MS: '200',
  DELIVERY_RETRY_MAX_MS: '1000',
  DELIVERY_RETRY_ATTEMPTS: '30',
  CONSUMER_LEASE_MS: '1000',
  EDGE_DRAIN_MS: '500',
};

const READY_LINE: Record<ServiceName, string> = {
  'edge-a': 'broker started',
  'edge-b': 'broker started',
  persister: 'broker started',
  dispatcher: 'broker started',
  api: 'broker started',
};

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port; // a TCP server's address is an object
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class FaultCluster {
  private readonly running = new Map<ServiceName, SpawnedService>();
  /** Output of every process that ran, killed ones included, for the report when a check fails. */
  private readonly history: Array<{ name: ServiceName; service: SpawnedService }> = [];

  private constructor(
    readonly ctx: TestContext,
    private readonly envs: Record<ServiceName, Env>,
    readonly ports: Record<ServiceName, number>,
    readonly balancer: Balancer,
    readonly postgresProxy: TcpProxy | undefined,
    readonly redisProxy: TcpProxy | undefined,
    /** The services this cluster runs. */
    readonly services: readonly ServiceName[],
  ) {}

  static async start(ctx: TestContext, options: ClusterOptions = {}): Promise<FaultCluster> {
    const ports = {} as Record<ServiceName, number>; // filled for every name just below
    for (const name of ALL_SERVICES) ports[name] = await freePort();
    const database = new URL(ctx.databaseUrl);
    const postgresProxy = options.cutPostgres
      ? await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) })
      : undefined;
    const redis = new URL(ctx.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    if (options.cutRedisForEdges && ctx.env.REDIS_CLUSTER_NODES)
      throw new Error('cutting Redis needs a single Redis node, not a cluster');
    const redisProxy = options.cutRedisForEdges
      ? await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) })
      : undefined;
    const viaProxy = (url: string, proxy: TcpProxy | undefined) => {
      if (!proxy) return url;
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      return proxied.toString();
    };
    const base: Env = { ...ctx.env, ...FAULT_ENV, ...options.env };
    const edgeEnv = (name: 'edge-a' | 'edge-b'): Env => ({
      ...base,
      EDGE_PORT: String(ports[name]),
      EDGE_ID: `${ctx.env.REDIS_PREFIX}-${name}`,
      REDIS_URL: viaProxy(base.REDIS_URL ?? '', redisProxy),
    });
    const envs: Record<ServiceName, Env> = {
      'edge-a': edgeEnv('edge-a'),
      'edge-b': edgeEnv('edge-b'),
      persister: {
        ...base,
        HEALTH_PORT: String(ports.persister),
        DATABASE_URL: viaProxy(ctx.databaseUrl, postgresProxy),
      },
      dispatcher: { ...base, HEALTH_PORT: String(ports.dispatcher) },
      api: { ...base, API_PORT: String(ports.api), DATABASE_URL: viaProxy(ctx.databaseUrl, postgresProxy) },
    };
    const services = options.services ?? ALL_SERVICES;
    const balanced = options.balanced ?? (['edge-a', 'edge-b'] as const).filter((e) => services.includes(e));
    const balancer = await startBalancer(balanced.map((name) => ({ host: '127.0.0.1', port: ports[name] })));
    const cluster = new FaultCluster(ctx, envs, ports, balancer, postgresProxy, redisProxy, services);
    await cluster.startAll();
    return cluster;
  }

  /** What devices dial: the balancer in front of the edges. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.balancer.port}/ws`;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.ports.api}`;
  }

  edgeId(name: 'edge-a' | 'edge-b'): string {
    return this.envs[name].EDGE_ID ?? name;
  }

  /** Balances new connections over these edges from now on. */
  balanceOver(names: ReadonlyArray<'edge-a' | 'edge-b'>): void {
    this.balancer.setBackends(names.map((name) => ({ host: '127.0.0.1', port: this.ports[name] })));
  }

  pid(name: ServiceName): number | undefined {
    return this.running.get(name)?.child.pid;
  }

  isRunning(name: ServiceName): boolean {
    return this.running.has(name);
  }

  /** Starts the service (again) on its own port and id; resolves once it says it started. */
  async start(name: ServiceName): Promise<void> {
    if (this.running.has(name)) throw new Error(`${name} is already running`);
    const service = spawnService(name.startsWith('edge') ? 'edge' : name, this.envs[name]);
    this.running.set(name, service);
    this.history.push({ name, service });
    const exitedEarly = service.exited.then(({ code, signal }) => {
      throw new Error(`${name} exited (code ${code}, signal ${signal}) before it started:\n${tail(service)}`);
    });
    const started = waitForLog(service, READY_LINE[name], 60_000).catch((err: Error) => {
      throw new Error(`${name}: ${err.message}; its output ends:\n${tail(service)}`);
    });
    await Promise.race([started, exitedEarly]);
    exitedEarly.catch(() => undefined); // a later exit (our own kill) is not a start failure
  }

  /** SIGKILL (default) or another signal; resolves once the process is gone. */
  async kill(name: ServiceName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const service = this.running.get(name);
    if (!service) throw new Error(`${name} is not running`);
    this.running.delete(name);
    const { signal: got, code } = await service.kill(signal);
    if (signal === 'SIGKILL' && got !== 'SIGKILL') throw new Error(`${name} ended with ${code}/${got}`);
  }

  /** Starts every service of the cluster that is not running; the persister first, as it applies the schema. */
  async startAll(): Promise<void> {
    const stopped = this.services.filter((name) => !this.running.has(name));
    if (stopped.includes('persister')) await this.start('persister');
    await Promise.all(stopped.filter((name) => name !== 'persister').map((name) => this.start(name)));
  }

  /** SIGKILLs every running service at once. */
  async killAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((name) => this.kill(name)));
  }

  /** The service's resident memory in KiB (Linux /proc), to show an edge is not growing. */
  residentKiB(name: ServiceName): number {
    const pid = this.pid(name);
    if (pid === undefined) return 0;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  async restart(name: ServiceName): Promise<void> {
    if (this.running.has(name)) await this.kill(name);
    await this.start(name);
  }

  /** The last lines of every process that ran, killed ones included: attach to a failure. */
  outputs(lines = 20): string {
    return this.history
      .map(({ name, service }) => `--- ${name} (pid ${service.child.pid})\n${tail(service, lines)}`)
      .join('\n');
  }

  /** Lines of every process's output matching the text (JSON log lines, parsed). */
  logLines(text: string): Array<Record<string, unknown>> {
    const found: Array<Record<string, unknown>> = [];
    for (const { service } of this.history) {
      for (const line of service.output().split('\n')) {
        if (!line.includes(text)) continue;
        try {
          found.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          found.push({ msg: line }); // a non-JSON line (a crash's stack) is kept as text
        }
      }
    }
    return found;
  }

  /** Stops everything: SIGTERM so the services leave cleanly, SIGKILL for any that does not in time. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.running].map(async ([name, service]) => {
        this.running.delete(name);
        const timer = setTimeout(() => service.child.kill('SIGKILL'), 5_000);
        await service.kill('SIGTERM');
        clearTimeout(timer);
      }),
    );
    await this.balancer.close();
    await this.postgresProxy?.close();
    await this.redisProxy?.close();
  }
}

function tail(service: SpawnedService, lines = 20): string {
  return service.output().split('\n').slice(-lines).join('\n');
}
