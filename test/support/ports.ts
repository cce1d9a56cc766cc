// A port nothing listens on: bound, then released (a dependency "unreachable" at a known address).
import { createServer } from 'node:net';

export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number }; // a TCP server's address is an object
  await new Promise((resolve) => server.close(resolve));
  return port;
}
