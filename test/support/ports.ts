// A port nothing listens on: bound, then released (a dependency "unreachable" at a known address, or a port a
// service started a moment later will listen on).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The first port the kernel hands out as the local end of outgoing connections. A port from below it cannot be
 * taken by one of the many client sockets a test opens between choosing the port and a service listening on it
 * (the fault suite once lost a run to exactly that: EADDRINUSE on a port `listen(0)` had chosen).
 */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 0; // not Linux: let the kernel choose, as before
  }
}

const LOWEST = 10_000;

function isFree(port: number): Promise<number | null> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(null));
    // Every address, as the services listen: a port taken on any of them is not free.
    server.listen(port, '0.0.0.0', () => {
      const { port: bound } = server.address() as { port: number }; // a TCP server's address is an object
      server.close(() => resolve(bound));
    });
  });
}

export async function unusedPort(): Promise<number> {
  const below = ephemeralStart();
  if (below <= LOWEST) {
    const port = await isFree(0);
    if (port === null) throw new Error('no free port');
    return port;
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await isFree(LOWEST + Math.floor(Math.random() * (below - LOWEST)));
    if (port !== null) return port;
  }
  throw new Error(`no free port in ${LOWEST}–${below - 1} after 100 tries`);
}
