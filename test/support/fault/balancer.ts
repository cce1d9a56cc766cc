// A tiny TCP round-robin balancer in front of the edges, standing in for the production TCP load balancer: each
// new connection goes to the next backend that accepts it, so a device whose edge was killed reconnects (through
// the device client's own reconnect) to one that is still up. Backends can be taken out of and put back into
// the rotation; a backend that refuses the connection is skipped for that connection only.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

export interface Balancer {
  readonly port: number;
  /** Connections handed to each backend port so far. */
  readonly handedTo: ReadonlyMap<number, number>;
  /** The rotation from now on (open connections are left alone). */
  setBackends(backends: readonly Backend[]): void;
  close(): Promise<void>;
}

export async function startBalancer(initial: readonly Backend[]): Promise<Balancer> {
  let backends = [...initial];
  let next = 0;
  const handedTo = new Map<number, number>();
  const open = new Set<Socket>();

  /** Tries each backend once, starting at the round-robin position; undefined when none accepts. */
  async function connectToSome(): Promise<{ upstream: Socket; backend: Backend } | undefined> {
    const rotation = backends;
    for (let tried = 0; tried < rotation.length; tried++) {
      const backend = rotation[(next + tried) % rotation.length]!;
      const upstream = await new Promise<Socket | undefined>((resolve) => {
        const socket = connect(backend.port, backend.host);
        socket.once('connect', () => resolve(socket));
        socket.once('error', () => {
          socket.destroy();
          resolve(undefined);
        });
      });
      if (upstream) {
        next = (next + tried + 1) % rotation.length;
        return { upstream, backend };
      }
    }
    return undefined;
  }

  const server: Server = createServer((client) => {
    open.add(client);
    client.pause(); // hold the device's first bytes until the upstream is chosen
    client.on('error', () => client.destroy());
    client.on('close', () => open.delete(client));
    connectToSome().then((chosen) => {
      if (!chosen || client.destroyed) {
        chosen?.upstream.destroy();
        client.destroy();
        return;
      }
      const { upstream, backend } = chosen;
      handedTo.set(backend.port, (handedTo.get(backend.port) ?? 0) + 1);
      open.add(upstream);
      upstream.on('close', () => open.delete(upstream));
      // Either side gone (an edge killed, a device closed) ends the pair, as a real TCP balancer would.
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port; // a TCP server's address is an object

  return {
    port,
    handedTo,
    setBackends(list) {
      backends = [...list];
      next = 0;
    },
    close() {
      for (const socket of open) socket.destroy();
      open.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
