import SwaggerParser from '@apidevtools/swagger-parser';
import type { TObject, TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { createApp, openApiDocument, openApiPath, routesOf } from '#api';
import { compile } from '#events';
import { createLogger } from '#runtime';

// The routes use their context only when they run, and this test never runs one: an empty context will do.
const routes = routesOf({} as Parameters<typeof routesOf>[0]);
interface Operation {
  parameters: Array<{ name: string; in: string }>;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
const document = openApiDocument(routes) as { paths: Record<string, Record<string, Operation>> };

/** SPEC §6, every route the API must serve, the health paths included. */
const SPEC_ROUTES = [
  ['post', '/v1/shops/{shopId}/devices'],
  ['get', '/v1/shops/{shopId}/devices'],
  ['delete', '/v1/shops/{shopId}/devices/{clientId}'],
  ['post', '/v1/shops/{shopId}/devices/{clientId}/token'],
  ['get', '/v1/shops/{shopId}/messages'],
  ['post', '/v1/messages/{id}/handle'],
  ['get', '/v1/shops/{shopId}/main-online'],
  ['post', '/v1/shops/{shopId}/notify'],
  ['post', '/v1/shops/{shopId}/broadcast'],
  ['get', '/v1/connections'],
  ['post', '/v1/connections/{connId}/disconnect'],
  ['get', '/v1/openapi.json'],
  ['get', '/healthz'],
  ['get', '/readyz'],
  ['get', '/metrics'],
] as const;
/**
 * Issue 22: token rotation is being built beside this test; until its route lands it may be missing from the
 * document. Empty this set once it has.
 */
const PENDING = new Set(['post /v1/shops/{shopId}/devices/{clientId}/token']);
const NEEDS_NO_KEY = new Set(['/v1/openapi.json', '/healthz', '/readyz', '/metrics']);

const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
  Object.keys(operations).map((method) => `${method} ${path}`),
);

/** The statuses an operation answers besides its success, in order. */
function errorStatuses(method: string, path: string): number[] {
  const responses = document.paths[path]?.[method]?.responses ?? {};
  return Object.keys(responses)
    .map(Number)
    .filter((status) => status >= 400);
}

function expectValid(schema: TSchema | undefined, value: unknown, what: string): void {
  if (schema === undefined) return;
  const checker = compile(schema);
  expect(checker.is(value), `${what}: ${checker.is(value) ? '' : checker.explain(value)}`).toBe(true);
}

describe('when openapi.json is generated from the route table', () => {
  it('documents every route of SPEC §6, and nothing else', () => {
    const spec = SPEC_ROUTES.map(([method, path]) => `${method} ${path}`);
    expect(spec.filter((route) => !documented.includes(route) && !PENDING.has(route))).toEqual([]);
    expect(documented.filter((route) => !spec.includes(route))).toEqual([]);
  });

  it('passes an OpenAPI 3.1 validator', async () => {
    // swagger-parser resolves every $ref and checks the document against the OpenAPI 3.1 schema; it rewrites what
    // it is given, hence the copy.
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
  });

  it('asks for the API key on every route but the document itself and the health paths', () => {
    for (const route of documented) {
      const [method, path] = route.split(' ') as [string, string];
      const security = document.paths[path]?.[method]?.security;
      expect(security, route).toEqual(NEEDS_NO_KEY.has(path) ? [] : undefined);
    }
  });

  it('declares every path parameter', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      for (const operation of Object.values(operations)) {
        expect(operation.parameters.filter((p) => p.in === 'path').map((p) => p.name)).toEqual(names);
      }
    }
  });

  it('answers every error of a /v1 route with the {error:{code,message}} schema', () => {
    for (const route of documented.filter((r) => r.includes(' /v1/'))) {
      const [method, path] = route.split(' ') as [string, string];
      const responses = document.paths[path]![method]!.responses;
      for (const status of errorStatuses(method, path)) {
        const schema = responses[String(status)]?.content?.['application/json']?.schema;
        expect(schema, `${route} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
  });

  it('lists the errors each route can really answer', () => {
    // 400 bad input, 401 no key, 404 not found, 409 conflict, 413 body too large, 422 unknown sender,
    // 500 a fault, 503 Redis or PostgreSQL away or draining.
    expect(errorStatuses('post', '/v1/shops/{shopId}/devices')).toEqual([400, 401, 409, 413, 500, 503]);
    expect(errorStatuses('get', '/v1/shops/{shopId}/devices')).toEqual([400, 401, 500, 503]);
    expect(errorStatuses('delete', '/v1/shops/{shopId}/devices/{clientId}')).toEqual([
      400, 401, 404, 500, 503,
    ]);
    expect(errorStatuses('get', '/v1/shops/{shopId}/messages')).toEqual([400, 401, 500, 503]);
    expect(errorStatuses('post', '/v1/messages/{id}/handle')).toEqual([400, 401, 404, 409, 413, 500, 503]);
    expect(errorStatuses('get', '/v1/shops/{shopId}/main-online')).toEqual([400, 401, 500, 503]);
    expect(errorStatuses('post', '/v1/shops/{shopId}/notify')).toEqual([400, 401, 404, 413, 422, 500, 503]);
    expect(errorStatuses('post', '/v1/shops/{shopId}/broadcast')).toEqual([400, 401, 413, 500, 503]);
    expect(errorStatuses('get', '/v1/connections')).toEqual([400, 401, 500, 503]);
    expect(errorStatuses('post', '/v1/connections/{connId}/disconnect')).toEqual([400, 401, 404, 500, 503]);
    // The document takes no input and no key: only draining (503) or a fault (500).
    expect(errorStatuses('get', '/v1/openapi.json')).toEqual([500, 503]);
    expect(errorStatuses('get', '/readyz')).toEqual([503]);
  });

  it('names each condition behind a status', () => {
    const notify = document.paths['/v1/shops/{shopId}/notify']!.post!.responses as Record<
      string,
      { description: string }
    >;
    expect(notify['404']?.description).toContain('NO_MAIN_DEVICE');
    expect(notify['503']?.description).toMatch(/LOG_UNAVAILABLE.*DRAINING/);
    expect(notify['400']?.description).toMatch(/INVALID_INPUT.*MALFORMED_JSON/);
  });

  it('gives examples that pass the schemas the route validates with', () => {
    for (const { spec } of routes) {
      const what = `${spec.method} ${spec.path}`;
      expectValid(spec.params as TObject | undefined, spec.example.params ?? {}, `${what} params`);
      expectValid(spec.query as TObject | undefined, spec.example.query ?? {}, `${what} query`);
      expectValid(spec.body, spec.example.body, `${what} body`);
      expectValid(spec.success.schema, spec.example.response, `${what} response`);
      if (spec.body) expect(spec.example.body, what).toBeDefined();
      if (spec.success.schema && !spec.isPublic) expect(spec.example.response, what).toBeDefined();
    }
  });

  it('is plain JSON', () => {
    expect(JSON.parse(JSON.stringify(document))).toEqual(document);
  });

  it('writes express parameters the OpenAPI way', () => {
    expect(openApiPath('/v1/shops/:shopId/devices/:clientId')).toBe('/v1/shops/{shopId}/devices/{clientId}');
    expect(openApiPath('/v1/connections')).toBe('/v1/connections');
  });
});

describe('when the express app is built from the route table', () => {
  const app = createApp(routes, {
    log: createLogger('silent'),
    apiKeys: ['k'],
    probe: async () => ({ ready: true, checks: {} }),
    isDraining: () => false,
  });
  /** Every method and path the app mounts as a route, walked from express's own router. */
  const served = app.router.stack.flatMap((layer) => {
    const route = layer.route as { path: string; methods: Record<string, boolean> } | undefined;
    if (route === undefined) return [];
    return Object.keys(route.methods).map((method) => `${method} ${openApiPath(route.path)}`);
  });

  it('serves the routes of the table', () => {
    expect(served).toHaveLength(routes.length);
  });

  it('documents every route it serves', () => {
    expect(served.filter((route) => !documented.includes(route))).toEqual([]);
  });

  it('serves every /v1 route it documents', () => {
    const documentedV1 = documented.filter((route) => route.includes(' /v1/'));
    expect(documentedV1.filter((route) => !served.includes(route))).toEqual([]);
  });
});
