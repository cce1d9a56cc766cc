import type { TObject, TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { openApiDocument, openApiPath, routesOf } from '#api';
import { compile } from '#events';

// The routes use their context only when they run, and this test never runs one: an empty context will do.
const routes = routesOf({} as Parameters<typeof routesOf>[0]);
const document = openApiDocument(routes) as {
  paths: Record<
    string,
    Record<string, { parameters: Array<{ name: string; in: string }>; security?: unknown[] }>
  >;
};

/** SPEC §6, every route the API must serve. */
const SPEC_ROUTES = [
  ['post', '/v1/shops/{shopId}/devices'],
  ['get', '/v1/shops/{shopId}/devices'],
  ['delete', '/v1/shops/{shopId}/devices/{clientId}'],
  ['get', '/v1/shops/{shopId}/messages'],
  ['post', '/v1/messages/{id}/handle'],
  ['get', '/v1/shops/{shopId}/main-online'],
  ['post', '/v1/shops/{shopId}/notify'],
  ['post', '/v1/shops/{shopId}/broadcast'],
  ['get', '/v1/connections'],
  ['post', '/v1/connections/{connId}/disconnect'],
  ['get', '/v1/openapi.json'],
] as const;

function expectValid(schema: TSchema | undefined, value: unknown, what: string): void {
  if (schema === undefined) return;
  const checker = compile(schema);
  expect(checker.is(value), `${what}: ${checker.is(value) ? '' : checker.explain(value)}`).toBe(true);
}

describe('when openapi.json is generated from the route table', () => {
  it('documents every route of SPEC §6, and nothing else', () => {
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual(SPEC_ROUTES.map(([method, path]) => `${method} ${path}`).sort());
  });

  it('asks for the API key on every route but the document itself', () => {
    for (const [method, path] of SPEC_ROUTES) {
      const security = document.paths[path]?.[method]?.security;
      expect(security, `${method} ${path}`).toEqual(path === '/v1/openapi.json' ? [] : undefined);
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
