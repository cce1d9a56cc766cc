// A TCP proxy with a gate on the way in: closed, it holds what the client sends (and counts it) until opened, so a
// test can wait until a service has sent a command that is now stuck ("Redis is slow right now") and act in that
// window. It can also close by itself at the first write containing some text (a given script's arguments).
// Replies flow freely; opening forwards the held bytes in order.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Gate {
  readonly port: number;
  /** Bytes held since the gate was closed. */
  readonly heldBytes: number;
  /** Holds everything from now on, or from the first write that contains `from`. */
  close(from?: string): void;
  open(): void;
  stop(): Promise<void>;
}

export async function startGate(target: { host: string; port: number }): Promise<Gate> {
  let isClosed = false;
  let closesAt: string | undefined;
  const held: Array<[Socket, Buffer]> = [];
  let heldBytes = 0;
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (closesAt !== undefined && chunk.includes(closesAt)) {
        isClosed = true;
        closesAt = undefined;
      }
      if (isClosed) {
        held.push([upstream, chunk]);
        heldBytes += chunk.length;
      } else upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port; // a TCP server's address is an object

  return {
    port,
    get heldBytes() {
      return heldBytes;
    },
    close(from) {
      if (from === undefined) isClosed = true;
      else closesAt = from;
      heldBytes = 0;
    },
    open() {
      isClosed = false;
      closesAt = undefined;
      for (const [upstream, chunk] of held.splice(0)) if (!upstream.destroyed) upstream.write(chunk);
    },
    stop() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
