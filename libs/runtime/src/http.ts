// /healthz, /readyz and /metrics, the same on every service. The edge and the api mount the handler on their own
// server; the persister and the dispatcher serve it alone on HEALTH_PORT.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { rest } from '#events';
import { collectDefaultMetrics, registry } from './metrics';
import type { Pool } from './postgres';
import type { RedisClient } from './redis';

/** The /readyz body; its schema is rest.Readiness, which openapi.json publishes. */
export type Readiness = rest.ReadinessView;

export type ReadinessProbe = () => Promise<Readiness>;

/** Answers the three health paths; returns false for any other request. */
export function answerHealth(req: IncomingMessage, res: ServerResponse, probe: ReadinessProbe): boolean {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path === '/readyz') {
    probe().then(
      (readiness) => sendJson(res, readiness.ready ? 200 : 503, readiness),
      (err: Error) => sendJson(res, 503, { ready: false, checks: { probe: err.message } }),
    );
    return true;
  }
  if (path === '/metrics') {
    collectDefaultMetrics(); // every service reports its process figures (RSS, heap, event-loop lag, GC)
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: Error) => sendJson(res, 500, { error: { code: 'INTERNAL', message: err.message } }),
    );
    return true;
  }
  return false;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function serveHealth(host: string, port: number, probe: ReadinessProbe): Promise<Server> {
  const server = createServer((req, res) => {
    if (!answerHealth(req, res, probe))
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'not found' } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** Stops listening and cuts keep-alive connections (an http or https server). */
export function closeServer(server: Pick<Server, 'close' | 'closeAllConnections'>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function checkRedis(client: RedisClient): Promise<string> {
  if (client.status !== 'ready') return `unreachable (${client.status})`;
  try {
    await withTimeout(client.ping(), 1000);
    return 'ok';
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

export async function checkPostgres(pool: Pool): Promise<string> {
  try {
    await withTimeout(pool.query('SELECT 1'), 1000);
    return 'ok';
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Builds a probe from named checks; ready only when every check says ok and the service is not draining. */
export function readinessOf(
  checks: Record<string, () => Promise<string>>,
  isDraining: () => boolean,
  detail?: () => Promise<Record<string, unknown>>,
): ReadinessProbe {
  return async () => {
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((name) => checks[name]!()));
    const report: Record<string, string> = {};
    names.forEach((name, i) => {
      report[name] = results[i]!;
    });
    if (isDraining()) report.service = 'draining';
    const ready = Object.values(report).every((value) => value === 'ok');
    return { ready, checks: report, ...(detail ? { detail: await detail() } : {}) };
  };
}
