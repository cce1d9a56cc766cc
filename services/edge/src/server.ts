// The edge's listening socket: HTTP or HTTPS (optionally mutual TLS), the /ws upgrade gate, and the health paths.
// Health needs no client certificate; /ws does when EDGE_TLS_CA is set. SIGHUP → reloadTls() swaps certificates
// for new handshakes without touching open connections.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { answerHealth, type Config, ConfigError, type ReadinessProbe } from '#runtime';

type TlsConfig = NonNullable<Config['edge']['tls']>;

/** The certificate files, checked: a ConfigError names the variable when one is unreadable or they do not fit. */
function readTls(tls: TlsConfig) {
  const options = {
    cert: readPem('EDGE_TLS_CERT', tls.certFile),
    key: readPem('EDGE_TLS_KEY', tls.keyFile),
    ...(tls.caFile ? { ca: readPem('EDGE_TLS_CA', tls.caFile) } : {}),
  };
  try {
    createSecureContext(options);
  } catch (err) {
    const reason = (err as Error).message;
    throw new ConfigError(
      'EDGE_TLS_CERT',
      `a PEM certificate matching EDGE_TLS_KEY (${reason})`,
      tls.certFile,
    );
  }
  return options;
}

function readPem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(variable, `a readable PEM file (${(err as NodeJS.ErrnoException).code})`, path);
  }
}

export interface EdgeServer {
  server: Server | HttpsServer;
  wss: WebSocketServer;
  /** Re-reads the certificate files for new handshakes; on a ConfigError the previous ones stay in use. */
  reloadTls(): void;
}

export interface EdgeServerHooks {
  probe: ReadinessProbe;
  isDraining(): boolean;
  onSocket(socket: WebSocket, request: IncomingMessage): void;
}

/** The listener, not yet listening. Throws a ConfigError for unusable certificate files. */
export function createEdgeServer(config: Config['edge'], hooks: EdgeServerHooks): EdgeServer {
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
    if (answerHealth(req, res, hooks.probe)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not found' } }));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', destroyOnError); // a peer gone mid-handshake concerns no one else
    if ((req.url ?? '').split('?')[0] !== '/ws') return abortHandshake(socket, 404, 'Not Found');
    if (hooks.isDraining()) return abortHandshake(socket, 503, 'Service Unavailable');
    if (tls?.caFile && !(req.socket as TLSSocket).authorized)
      return abortHandshake(socket, 401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => hooks.onSocket(ws, req));
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

/**
 * A plain function, not a closure: the listener stays on the socket for the connection's life, and a closure
 * here would share its context with the upgrade callback's and keep the request and its headers alive with it.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function abortHandshake(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
