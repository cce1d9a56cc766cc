// A TCP proxy between a service and a dependency, so a test can take the dependency away and bring it back
// without touching the real server: `cut()` drops every open connection and refuses new ones, `stall()` keeps
// connections open but forwards nothing (a slow or hung server), `stallAt(marker)` does so from the first request
// bytes that hold the marker (a server that hangs in the middle of one command), `resume()` restores normal service.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Connections dropped or refused since start. */
  readonly refused: number;
  cut(): void;
  stall(): void;
  /** Forwards as usual until a client sends bytes holding `marker`, then stalls, holding those bytes too. */
  stallAt(marker: string): void;
  resume(): void;
  close(): Promise<void>;
}

type Mode = 'open' | 'cut' | 'stalled';

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = 'open';
  let refused = 0;
  let stallMarker: Buffer | null = null;
  const pairs = new Set<[Socket, Socket]>();
  const held: Array<[Socket, Buffer]> = []; // bytes read while stalled, forwarded in order on resume

  function forward(from: Socket, to: Socket, isRequest: boolean): void {
    from.on('data', (chunk: Buffer) => {
      if (isRequest && stallMarker !== null && chunk.includes(stallMarker)) {
        stallMarker = null;
        mode = 'stalled';
      }
      if (mode === 'stalled') held.push([to, chunk]);
      else if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
  }

  const server: Server = createServer((client) => {
    if (mode === 'cut') {
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    forward(client, upstream, true);
    forward(upstream, client, false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port; // a TCP server's address is an object

  return {
    port,
    get refused() {
      return refused;
    },
    cut() {
      mode = 'cut';
      for (const [client, upstream] of pairs) {
        refused++;
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      held.length = 0;
    },
    stall() {
      mode = 'stalled';
    },
    stallAt(marker) {
      stallMarker = Buffer.from(marker);
    },
    resume() {
      mode = 'open';
      stallMarker = null;
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'postgres:': 5432, 'postgresql:': 5432 };

/** A proxy in front of the server a Redis or PostgreSQL URL names, and the same URL through the proxy. */
export async function proxyInFrontOf(url: string): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(url);
  const proxy = await startTcpProxy({
    host: target.hostname,
    port: Number(target.port || DEFAULT_PORTS[target.protocol]),
  });
  target.hostname = '127.0.0.1';
  target.port = String(proxy.port);
  return { proxy, url: target.toString() };
}
