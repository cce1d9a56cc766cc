// The edge's listening socket: HTTP or HTTPS (optionally mutual TLS), the upgrade gate of /ws and of the original
// protocol's path, and the health paths. Health needs no client certificate; /ws does when EDGE_TLS_CA is set, the
// legacy path always does, from EDGE_LEGACY_CA. SIGHUP → reloadTls() swaps certificates for new handshakes without
// touching open connections.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { legacyAnswer, phpJson } from '#events';
import { answerHealth, type Config, ConfigError, type Logger, type ReadinessProbe } from '#runtime';
import { type ClientCas, isIssuedDirectlyBy, isSignedBy, readCas } from './client-certs';

type TlsConfig = NonNullable<Config['edge']['tls']>;
type LegacyConfig = Config['edge']['legacy'];

/** Which protocol a socket speaks: v1 on /ws, the original system's on EDGE_LEGACY_PATH (SPEC §9.1). */
export type Dialect = 'v1' | 'legacy';

/**
 * The certificate files, checked: a ConfigError names the variable when one is unreadable or they do not fit. The
 * handshake trusts both client CAs; each path then checks which one signed the certificate (client-certs.ts).
 */
function readTls(tls: TlsConfig, legacy: LegacyConfig) {
  const v1Cas = tls.caFile ? readCas('EDGE_TLS_CA', tls.caFile) : null;
  const legacyCas = legacy ? readCas('EDGE_LEGACY_CA', legacy.caFile) : null;
  const trusted = [v1Cas, legacyCas].flatMap((cas) => (cas ? cas.pems : []));
  const options = {
    cert: readPem('EDGE_TLS_CERT', tls.certFile),
    key: readPem('EDGE_TLS_KEY', tls.keyFile),
    ...(trusted.length > 0 ? { ca: trusted } : {}),
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
  return { options, v1Cas, legacyCas };
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
  log: Logger;
  probe: ReadinessProbe;
  isDraining(): boolean;
  onSocket(socket: WebSocket, request: IncomingMessage, dialect: Dialect): void;
}

/** The listener, not yet listening. Throws a ConfigError for unusable certificate files. */
export function createEdgeServer(config: Config['edge'], hooks: EdgeServerHooks): EdgeServer {
  const tls = config.tls;
  const legacy = config.legacy;
  let cas: { v1Cas: ClientCas | null; legacyCas: ClientCas | null } = { v1Cas: null, legacyCas: null };
  let server: Server | HttpsServer;
  if (tls) {
    const read = readTls(tls, legacy);
    cas = read;
    const requestCert = Boolean(tls.caFile || legacy);
    server = createHttpsServer({ ...read.options, requestCert, rejectUnauthorized: false });
  } else {
    server = createHttpServer();
  }
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
    const path = (req.url ?? '').split('?')[0];
    const dialect: Dialect | null = path === '/ws' ? 'v1' : legacy && path === legacy.path ? 'legacy' : null;
    if (dialect === null) return abortHandshake(socket, 404, 'Not Found');
    if (hooks.isDraining()) return abortHandshake(socket, 503, 'Service Unavailable');
    if (dialect === 'legacy') {
      // SPEC §9.1: a client certificate from the chain's CA, else no upgrade; answered in the original's shape.
      const tlsSocket = req.socket as TLSSocket;
      const taken =
        isSignedBy(tlsSocket, cas.legacyCas) ||
        (legacy?.allowMd5 && isIssuedDirectlyBy(tlsSocket, cas.legacyCas));
      if (!taken) {
        // Said once per refusal: during a switch-over it is how an operator finds devices whose certificates
        // the edge does not take (another CA, none, expired, or signed with MD5 while EDGE_LEGACY_ALLOW_MD5 is off).
        const reason = tlsSocket.authorizationError ?? 'signed by another CA';
        hooks.log.info(
          { remote_addr: req.socket.remoteAddress, reason: String(reason) },
          'legacy upgrade refused',
        );
        return abortHandshake(socket, 401, 'Unauthorized', legacyRefusal);
      }
    } else if (tls?.caFile && !isSignedBy(req.socket as TLSSocket, cas.v1Cas)) {
      return abortHandshake(socket, 401, 'Unauthorized');
    }
    wss.handleUpgrade(req, socket, head, (ws) => hooks.onSocket(ws, req, dialect));
  });

  return {
    server,
    wss,
    reloadTls() {
      if (!tls) return;
      const read = readTls(tls, legacy);
      (server as HttpsServer).setSecureContext(read.options);
      cas = read;
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

/** The body of a refused legacy upgrade: the original's error shape (its time is that of the refusal). */
function legacyRefusal(): string {
  return phpJson(legacyAnswer(1, 'a client certificate from the legacy CA is required', Date.now()));
}

function abortHandshake(socket: Duplex, status: number, text: string, body?: () => string): void {
  const content = body?.() ?? '';
  const type = content === '' ? '' : 'Content-Type: application/json; charset=utf-8\r\n';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(content)}\r\n\r\n${content}`,
  );
}
