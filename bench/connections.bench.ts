// Connections on one edge: memory per idle logged-in connection (the edge's RSS before and after, and its V8 heap
// after a forced full GC), and the time for a crowd of devices to reconnect and log in after a network blip.
// The sockets come from two load-generator processes, each with its own loopback source addresses.
import { type ChildProcess, fork } from 'node:child_process';
import type { WorkerCommand, WorkerReport } from './connections-worker';
import { type BenchEnv, type BrokerProcess, freePort, metricOf, startService } from './lib/broker';
import { track } from './lib/children';
import { registerShops } from './lib/fleet';
import { attachInspector } from './lib/inspector';
import { cpuSecondsOf, rssOf } from './lib/machine';
import { round } from './lib/stats';
import { sleep, waitUntil } from './lib/wait';

export interface ConnectionsOptions {
  total: number;
  reconnect: number;
}

export interface ConnectionsResult {
  total: number;
  connected: number;
  failed: number;
  connectS: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** RSS growth per connection, with nothing forced: what the machine pays. */
  rssPerConnectionKiB: number;
  /** RSS and V8 heap growth per connection measured after a full GC on both sides. */
  rssAfterGcPerConnectionKiB: number;
  heapPerConnectionKiB: number;
  reconnect: number;
  reconnected: number;
  reconnectFailed: number;
  reconnectS: number;
  /** The edge's CPU during the reconnect burst: cores used, and CPU ms per login (the figure contention spares). */
  edgeCoresDuringReconnect: number;
  edgeCpuMsPerLogin: number;
  handshakesInFlight: number;
  generators: number;
  sourceAddresses: string[];
  firstError?: string;
}

const GENERATORS = 2;
const HANDSHAKES_PER_GENERATOR = 250;
const SOURCE_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

class Generator {
  private pending: ((report: WorkerReport) => void) | undefined;
  private constructor(private readonly child: ChildProcess) {
    child.on('message', (report: WorkerReport) => this.pending?.(report));
  }

  static start(): Generator {
    const child = track(
      fork(new URL('./connections-worker.ts', import.meta.url).pathname, [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    return new Generator(child);
  }

  ask(command: WorkerCommand): Promise<WorkerReport> {
    return new Promise((resolve) => {
      this.pending = resolve;
      this.child.send(command);
    });
  }

  async exit(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ cmd: 'exit' } satisfies WorkerCommand);
    await exited;
  }
}

export async function runConnections(
  bench: BenchEnv,
  options: ConnectionsOptions,
): Promise<ConnectionsResult> {
  const shops = await registerShops(bench, 'conn', Math.ceil(options.total / 3));
  const tokens = shops.flatMap((s) => [s.sub.token, ...s.mains.map((m) => m.token)]).slice(0, options.total);
  const inspectPort = await freePort();
  const edge = await startService(bench, 'edge', 'edge-conns', {
    nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`],
  });
  const inspector = await attachInspector(inspectPort);
  const generators = Array.from({ length: GENERATORS }, () => Generator.start());
  try {
    await sleep(2000); // let the fresh edge settle (lazy compilation, first heartbeats)
    const rssBefore = rssOf(edge.pid);
    await inspector.collectGarbage();
    const gcBefore = await inspector.memoryUsage();

    const url = `ws://127.0.0.1:${edge.port}/ws`;
    const share = Math.ceil(tokens.length / GENERATORS);
    const connectStart = performance.now();
    const connects = await Promise.all(
      generators.map((generator, g) =>
        generator.ask({
          cmd: 'connect',
          url,
          tokens: tokens.slice(g * share, (g + 1) * share),
          localAddresses: SOURCE_ADDRESSES.filter((_, a) => a % GENERATORS === g),
          concurrency: HANDSHAKES_PER_GENERATOR,
        }),
      ),
    );
    const connectS = (performance.now() - connectStart) / 1000;
    const connected = connects.reduce((sum, r) => sum + r.ok, 0);

    await waitForIdle(edge);
    const rssAfter = rssOf(edge.pid);
    await inspector.collectGarbage();
    const gcAfter = await inspector.memoryUsage();
    const reconnect = await blipAndReconnect(edge, generators, connected, options.reconnect);

    const kib = (bytes: number) => round(bytes / 1024 / Math.max(1, connected), 2);
    const firstError = [...connects, ...reconnect.reports].find((r) => r.firstError)?.firstError;
    return {
      total: options.total,
      connected,
      failed: connects.reduce((sum, r) => sum + r.failed, 0),
      connectS: round(connectS, 2),
      rssBeforeMiB: round(rssBefore / 2 ** 20, 1),
      rssAfterMiB: round(rssAfter / 2 ** 20, 1),
      rssPerConnectionKiB: kib(rssAfter - rssBefore),
      rssAfterGcPerConnectionKiB: kib(gcAfter.rss - gcBefore.rss),
      heapPerConnectionKiB: kib(gcAfter.heapUsed + gcAfter.external - gcBefore.heapUsed - gcBefore.external),
      reconnect: reconnect.dropped,
      reconnected: reconnect.reconnected,
      reconnectFailed: reconnect.reports.reduce((sum, r) => sum + r.failed, 0),
      reconnectS: round(reconnect.seconds, 2),
      edgeCoresDuringReconnect: round(reconnect.edgeCpuS / reconnect.seconds, 2),
      edgeCpuMsPerLogin: round((reconnect.edgeCpuS * 1000) / Math.max(1, reconnect.reconnected), 3),
      handshakesInFlight: HANDSHAKES_PER_GENERATOR * GENERATORS,
      generators: GENERATORS,
      sourceAddresses: SOURCE_ADDRESSES,
      ...(firstError ? { firstError } : {}),
    };
  } finally {
    inspector.close();
    await Promise.all(generators.map((generator) => generator.exit()));
    await edge.stop();
  }
}

/** The blip: devices from each generator drop, the edge notices, then all of them reconnect and log in at once. */
async function blipAndReconnect(
  edge: BrokerProcess,
  generators: Generator[],
  connected: number,
  count: number,
) {
  const perGenerator = Math.ceil(count / GENERATORS);
  await Promise.all(generators.map((generator) => generator.ask({ cmd: 'drop', count: perGenerator })));
  const dropped = perGenerator * GENERATORS;
  await waitUntil(async () => (await loggedIn(edge)) <= connected - dropped, 60_000, 100);
  const start = performance.now();
  const edgeCpuBefore = cpuSecondsOf(edge.pid);
  const reports = await Promise.all(generators.map((generator) => generator.ask({ cmd: 'reconnect' })));
  return {
    dropped,
    reports,
    reconnected: reports.reduce((sum, r) => sum + r.ok, 0),
    seconds: (performance.now() - start) / 1000,
    edgeCpuS: cpuSecondsOf(edge.pid) - edgeCpuBefore,
  };
}

function loggedIn(edge: BrokerProcess): Promise<number> {
  return metricOf(edge.healthUrl, 'broker_edge_connections', 'state="logged_in"');
}

/** Waits until the edge's RSS stops growing (logins recorded, buffers settled), at most 20 s. */
async function waitForIdle(edge: BrokerProcess): Promise<void> {
  let last = rssOf(edge.pid);
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const now = rssOf(edge.pid);
    if (Math.abs(now - last) < 256 * 1024) return;
    last = now;
  }
}

export function printConnections(result: ConnectionsResult): void {
  console.log(
    `connections: ${result.connected}/${result.total} idle logged-in sockets on one edge in ${result.connectS} s (${result.failed} failed), from ${result.generators} generator processes`,
  );
  console.log(
    `  edge RSS ${result.rssBeforeMiB} → ${result.rssAfterMiB} MiB: ${result.rssPerConnectionKiB} KiB per connection (after a forced GC: RSS ${result.rssAfterGcPerConnectionKiB} KiB, V8 heap+external ${result.heapPerConnectionKiB} KiB)`,
  );
  console.log(
    `  ${result.reconnected}/${result.reconnect} devices reconnected and logged in in ${result.reconnectS} s (${result.reconnectFailed} failed; at most ${result.handshakesInFlight} handshakes in flight); edge ${result.edgeCoresDuringReconnect} cores, ${result.edgeCpuMsPerLogin} CPU ms per login`,
  );
  if (result.firstError) console.log(`  first error: ${result.firstError}`);
}
