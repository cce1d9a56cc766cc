// The edge's listening socket: HTTP or HTTPS (optionally mutual TLS), the /ws upgrade gate, and the health paths.
// Health needs no client certificate; /ws does when EDGE_TLS_CA is set. SIGHUP → reloadTls() swaps certificates
// for new handshakes without touching open connections.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { answerHealth, type Config, type ReadinessProbe } from '#runtime';

type TlsConfig = NonNullable<Config['edge']['tls']>;

function readTls(tls: TlsConfig) {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
  };
}

export interface EdgeServer {
  server: Server | HttpsServer;
  wss: WebSocketServer;
  reloadTls(): void;
}

export function createEdgeServer(
  config: Config['edge'],
  probe: ReadinessProbe,
  isDraining: () => boolean,
  onSocket: (socket: WebSocket, request: IncomingMessage) => void,
): EdgeServer {
  const tls = config.tls;
  const server = tls
    ? createHttpsServer({ ...readTls(tls), requestCert: Boolean(tls.caFile), rejectUnauthorized: false })
    : createHttpServer();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxFrameBytes,
    clientTracking: false,
  });

  server.on('request', (req, res) => {
    if (answerHealth(req, res, probe)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not found' } }));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy()); // a peer gone mid-handshake concerns no one else
    if ((req.url ?? '').split('?')[0] !== '/ws') return abortHandshake(socket, 404, 'Not Found');
    if (isDraining()) return abortHandshake(socket, 503, 'Service Unavailable');
    if (tls?.caFile && !(req.socket as TLSSocket).authorized)
      return abortHandshake(socket, 401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws, req));
  });

  return {
    server,
    wss,
    reloadTls() {
      if (!tls) return;
      (server as HttpsServer).setSecureContext(readTls(tls));
    },
  };
}

function abortHandshake(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
