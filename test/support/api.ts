// The api started in-process on a free port, and a fetch wrapper that adds the key: how every test talks to it.
import { type ApiDeps, type ApiHandle, start as startApi } from '#api';
import type { TestContext } from './context';

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
