// A whole broker for a fault case: two edges behind a round-robin balancer, a persister, a dispatcher and an api.
// A service the case kills runs as a child process (`broker start <service>`) so it can be SIGKILLed and started
// again on the same port and id; the others run in the test's process through start(), which costs no process
// start-up (seconds of module loading each on a small machine). Optional TCP proxies put PostgreSQL (persister and
// api) or Redis (the edges) on a path the test can cut.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { type Config, createLogger, type Env, loadConfig, type ServiceHandle } from '#runtime';
import {
  blockFixture,
  createTestContext,
  type SpawnedService,
  spawnService,
  type TestContext,
  waitForLog,
} from '#test-support';
import { unusedPort } from '../ports';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy';
import { type Balancer, startBalancer } from './balancer';

export type ServiceName = 'edge-a' | 'edge-b' | 'persister' | 'dispatcher' | 'api';
export const ALL_SERVICES: readonly ServiceName[] = ['edge-a', 'edge-b', 'persister', 'dispatcher', 'api'];

export interface ClusterOptions {
  /** The services to run (default all). */
  services?: readonly ServiceName[];
  /** Those that run as child processes, to be killed (default all); the rest run in the test's process. */
  processes?: readonly ServiceName[];
  /** Persister and api reach PostgreSQL through a proxy the test can cut. */
  cutPostgres?: boolean;
  /** The edges (all, or those named) reach Redis through a proxy the test can cut (not with a Redis Cluster). */
  cutRedisForEdges?: boolean | ReadonlyArray<'edge-a' | 'edge-b'>;
  /** Which edges the balancer sends new connections to at first (default every edge that runs). */
  balanced?: ReadonlyArray<'edge-a' | 'edge-b'>;
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

/** A service start on a loaded 2-core machine (module loading alone takes seconds). */
const START_TIMEOUT_MS = 120_000;

/** A running service, in a child process or in this one; output() is its log (JSON lines). */
interface Member {
  name: ServiceName;
  pid: number;
  output(): string;
  /** Gone for good: SIGKILL (a process) or stop() (in this process). */
  end(signal: NodeJS.Signals): Promise<void>;
}

export class FaultCluster {
  private readonly running = new Map<ServiceName, Member>();
  /** Every member that ran, ended ones included, for the report when a check fails. */
  private readonly history: Member[] = [];

  private constructor(
    readonly ctx: TestContext,
    private readonly envs: Record<ServiceName, Env>,
    readonly ports: Record<ServiceName, number>,
    readonly balancer: Balancer,
    readonly postgresProxy: TcpProxy | undefined,
    readonly redisProxy: TcpProxy | undefined,
    readonly services: readonly ServiceName[],
    private readonly processes: readonly ServiceName[],
  ) {}

  static async start(ctx: TestContext, options: ClusterOptions = {}): Promise<FaultCluster> {
    const ports = {} as Record<ServiceName, number>; // filled for every name just below
    for (const name of ALL_SERVICES) ports[name] = await unusedPort();
    const database = new URL(ctx.databaseUrl);
    const postgresProxy = options.cutPostgres
      ? await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) })
      : undefined;
    if (options.cutRedisForEdges && ctx.env.REDIS_CLUSTER_NODES)
      throw new Error('cutting Redis needs a single Redis node, not a cluster');
    const redis = new URL(ctx.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const redisProxy = options.cutRedisForEdges
      ? await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) })
      : undefined;
    const base: Env = { ...ctx.env, ...FAULT_ENV, ...options.env };
    const edgeEnv = (name: 'edge-a' | 'edge-b'): Env => ({
      ...base,
      EDGE_PORT: String(ports[name]),
      EDGE_ID: `${ctx.env.REDIS_PREFIX}-${name}`,
      REDIS_URL:
        options.cutRedisForEdges === true || (options.cutRedisForEdges || []).includes(name)
          ? viaProxy(base.REDIS_URL ?? '', redisProxy)
          : (base.REDIS_URL ?? ''),
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
    const balanced =
      options.balanced ?? (['edge-a', 'edge-b'] as const).filter((name) => services.includes(name));
    const balancer = await startBalancer(balanced.map((name) => ({ host: '127.0.0.1', port: ports[name] })));
    const processes = options.processes ?? services;
    const cluster = new FaultCluster(
      ctx,
      envs,
      ports,
      balancer,
      postgresProxy,
      redisProxy,
      services,
      processes,
    );
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

  isRunning(name: ServiceName): boolean {
    return this.running.has(name);
  }

  /** Starts the service (again) on its own port and id; resolves once it is serving. */
  async start(name: ServiceName): Promise<void> {
    if (this.running.has(name)) throw new Error(`${name} is already running`);
    const member = this.processes.includes(name)
      ? await startProcess(name, this.envs[name])
      : await startInline(name, this.envs[name]);
    this.running.set(name, member);
    this.history.push(member);
  }

  /** Starts every service of the cluster that is not running; the persister first, as it applies the schema. */
  async startAll(): Promise<void> {
    const stopped = this.services.filter((name) => !this.running.has(name));
    if (stopped.includes('persister')) await this.start('persister');
    await Promise.all(stopped.filter((name) => name !== 'persister').map((name) => this.start(name)));
  }

  /** SIGKILL; resolves once the process is gone. Only for a service that runs as a process. */
  async kill(name: ServiceName): Promise<void> {
    const member = this.running.get(name);
    if (!member) throw new Error(`${name} is not running`);
    if (!this.processes.includes(name))
      throw new Error(`${name} runs in the test's process: it cannot be killed`);
    this.running.delete(name);
    await member.end('SIGKILL');
  }

  /** SIGKILLs every running service at once. */
  async killAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((name) => this.kill(name)));
  }

  /** A process's resident memory in KiB (Linux /proc), to show an edge is not growing. */
  residentKiB(name: ServiceName): number {
    const pid = this.running.get(name)?.pid;
    if (pid === undefined || !this.processes.includes(name))
      throw new Error(`${name} is no process of its own`);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  /** The last lines of every service that ran, ended ones included: attach to a failure. */
  outputs(lines = 20): string {
    return this.history
      .map((member) => `--- ${member.name} (pid ${member.pid})\n${tail(member.output(), lines)}`)
      .join('\n');
  }

  /** Log lines of every service that ran containing the text, parsed. */
  logLines(text: string): Array<Record<string, unknown>> {
    const found: Array<Record<string, unknown>> = [];
    for (const member of this.history) {
      for (const line of member.output().split('\n')) {
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

  /** Stops everything: SIGTERM so processes leave cleanly (SIGKILL for any that does not in time). */
  async stop(): Promise<void> {
    const members = [...this.running.values()];
    this.running.clear();
    await Promise.all(members.map((member) => member.end('SIGTERM')));
    await this.balancer.close();
    await this.postgresProxy?.close();
    await this.redisProxy?.close();
  }
}

function viaProxy(url: string, proxy: TcpProxy | undefined): string {
  if (!proxy) return url;
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return proxied.toString();
}

async function startProcess(name: ServiceName, env: Env): Promise<Member> {
  const service: SpawnedService = spawnService(name.startsWith('edge') ? 'edge' : name, env);
  const exitedEarly = service.exited.then(({ code, signal }) => {
    throw new Error(
      `${name} exited (code ${code}, signal ${signal}) before it started:\n${tail(service.output())}`,
    );
  });
  const started = waitForLog(service, 'broker started', START_TIMEOUT_MS).catch((err: Error) => {
    throw new Error(`${name}: ${err.message}; its output ends:\n${tail(service.output())}`);
  });
  try {
    await Promise.race([started, exitedEarly]);
  } catch (err) {
    await service.kill('SIGKILL');
    throw err;
  }
  exitedEarly.catch(() => undefined); // a later exit is ours (kill or stop), not a start failure
  return {
    name,
    pid: service.child.pid ?? 0,
    output: service.output,
    async end(signal) {
      const timer = setTimeout(() => service.child.kill('SIGKILL'), 5_000);
      await service.kill(signal);
      clearTimeout(timer);
    },
  };
}

async function startInline(name: ServiceName, env: Env): Promise<Member> {
  let output = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      output += String(chunk);
      done();
    },
  });
  const log = createLogger(env.LOG_LEVEL ?? 'info', sink);
  const { config } = loadConfig(env);
  const handle = await startService(name, config, log);
  return { name, pid: process.pid, output: () => output, end: () => handle.stop() };
}

async function startService(name: ServiceName, config: Config, log: ReturnType<typeof createLogger>) {
  const handle: ServiceHandle =
    name === 'edge-a' || name === 'edge-b'
      ? await (await import('#edge')).start(config, { log })
      : name === 'persister'
        ? await (await import('#persister')).start(config, { log })
        : name === 'dispatcher'
          ? await (await import('#dispatcher')).start(config, { log })
          : await (await import('#api')).start(config, { log });
  log.info({ service: name }, 'broker started');
  return handle;
}

function tail(output: string, lines = 20): string {
  return output.split('\n').slice(-lines).join('\n');
}

/** A fault file's (or describe block's) broker: its own context and a FaultCluster, set once beforeAll has run. */
export interface ClusterUnderTest {
  ctx: TestContext;
  cluster: FaultCluster;
}

/** Registers the beforeAll that starts the cluster with `options` and the afterAll that stops it and drops the context. */
export function clusterUnderTest(options: ClusterOptions = {}): ClusterUnderTest {
  return blockFixture<ClusterUnderTest>(
    async (world) => {
      world.ctx = await createTestContext();
      world.cluster = await FaultCluster.start(world.ctx, options);
    },
    async (world) => {
      await world.cluster?.stop();
      await world.ctx?.cleanup();
    },
  );
}
