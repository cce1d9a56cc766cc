// What the api tests share: the api started in-process on a free port, a fetch wrapper that adds the key, and
// a TCP proxy in front of Redis that a test can cut to make a real outage (no mocks).
import { createServer, type Server, Socket } from 'node:net';
import { type ApiDeps, type ApiHandle, start as startApi } from '#api';
import { type BrokerEvent, decodeEntry } from '#events';
import type { TestContext } from '#test-support';

export const API_KEY = 'test-key';

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or null when the answer has none. */
  body: Record<string, unknown> & { error?: { code: string; message: string } };
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body text, sent as JSON whatever it holds. */
  raw?: string;
  /** The bearer key; null sends no Authorization header. */
  key?: string | null;
  headers?: Record<string, string>;
}

export interface Api {
  handle: ApiHandle;
  url: string;
  request(method: string, path: string, options?: RequestOptions): Promise<Answer>;
}

export async function startTestApi(ctx: TestContext, deps: Partial<ApiDeps> = {}): Promise<Api> {
  const handle = await startApi(ctx.config, { log: ctx.log, ...deps });
  const url = `http://127.0.0.1:${handle.port}`;
  return { handle, url, request: (method, path, options) => requestApi(url, method, path, options) };
}

export async function requestApi(
  url: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (options.raw !== undefined || options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = options.raw ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${url}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: Answer['body'] = {};
  if (text.length > 0 && response.headers.get('content-type')?.includes('json')) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** A TCP proxy to a real server; cut() drops every connection and refuses new ones until resume(). */
export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer((client) => {
        const upstream = new Socket();
        upstream.connect(targetPort, targetHost);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
        }
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream).pipe(client);
      });
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => {
        port = (next.address() as { port: number }).port;
        server = next;
        resolve();
      });
    });
  const cut = async () => {
    const closing = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  await listen();
  return { port, cut, resume: listen, close: cut };
}

/** The shop's events as recorded in its stream, in log order. */
export async function eventsOf(ctx: TestContext, shopId: string): Promise<BrokerEvent[]> {
  const entries = await ctx.redis.xrange(ctx.keys.streamOfShop(shopId), '-', '+');
  const events: BrokerEvent[] = [];
  for (const [, fields] of entries) {
    const decoded = decodeEntry(fields);
    if (!decoded.ok) throw new Error(`undecodable entry: ${decoded.reason}`);
    if (decoded.event.shop_id === shopId) events.push(decoded.event);
  }
  return events;
}
