// ◇ openapi.json, generated from the route table and the TypeBox schemas the routes validate with (TypeBox
// schemas are JSON Schema, which OpenAPI 3.1 takes as is). Pure: the same routes always give the same document.
import type { TObject, TSchema } from '@sinclair/typebox';
import { ERRORS, type ErrorCode, rest } from '#events';
import { type AnyRouteSpec, MAX_BODY_BYTES, type Route } from './route';

type Json = Record<string, unknown>;

/** Shapes published under components/schemas and referenced by name. */
const NAMED: ReadonlyArray<[string, TSchema]> = [
  ['Device', rest.Device],
  ['RegisteredDevice', rest.RegisteredDevice],
  ['Message', rest.Message],
  ['Connection', rest.Connection],
  ['MainOnline', rest.MainOnline],
  ['Accepted', rest.Accepted],
  ['Disconnecting', rest.Disconnecting],
  ['Error', rest.ErrorBody],
  ['Health', rest.Health],
  ['Readiness', rest.Readiness],
  ['RegisterDeviceBody', rest.RegisterDeviceBody],
  ['HandleMessageBody', rest.HandleMessageBody],
  ['HttpNotifyBody', rest.HttpNotifyBody],
  ['BroadcastBody', rest.BroadcastBody],
];
const NAME_OF = new Map<TSchema, string>(NAMED.map(([name, schema]) => [schema, name]));

/** A plain copy: TypeBox marks its schemas with symbol keys, which are not JSON. */
function plain(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

function schemaRef(schema: TSchema): Json {
  const name = NAME_OF.get(schema);
  return name === undefined ? plain(schema) : { $ref: `#/components/schemas/${name}` };
}

/** The express path `/v1/messages/:id/handle` as an OpenAPI path `/v1/messages/{id}/handle`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_]\w*)/g, '{$1}');
}

function parametersOf(spec: AnyRouteSpec): Json[] {
  const inPath = (spec.params as TObject | undefined)?.properties ?? {};
  const inQuery = (spec.query as TObject | undefined)?.properties ?? {};
  const required = new Set(spec.query?.required ?? []);
  const example = spec.example as { params?: Json; query?: Json; headers?: Json };
  return [
    ...Object.entries(inPath).map(([name, schema]) => ({
      name,
      in: 'path',
      required: true,
      schema: plain(schema),
      example: example.params?.[name],
    })),
    ...Object.entries(inQuery).map(([name, schema]) => ({
      name,
      in: 'query',
      required: required.has(name),
      schema: plain(schema),
      ...(example.query?.[name] === undefined ? {} : { example: example.query[name] }),
    })),
    ...(spec.headers ?? []).map((header) => ({
      name: header.name,
      in: 'header',
      required: false,
      description: header.description,
      schema: plain(header.schema),
    })),
  ];
}

/**
 * Every condition a route may answer with, grouped by HTTP status: its own, then what the app adds around it
 * (app.ts): 400 for input that fails its schemas, 400/413 for a body express.json refuses, 401 without a key,
 * 503 while draining, 500 for a fault.
 */
function errorsOf(spec: AnyRouteSpec): Map<number, ErrorCode[]> {
  const codes = new Set<ErrorCode>();
  if (spec.params || spec.query || spec.body || spec.headers) codes.add('INVALID_INPUT');
  if (spec.body) {
    codes.add('MALFORMED_JSON');
    codes.add('PAYLOAD_TOO_LARGE');
  }
  if (!spec.isPublic) codes.add('UNAUTHORIZED');
  for (const code of [...spec.errors, 'DRAINING', 'INTERNAL'] as const) codes.add(code);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = (ERRORS[code] as { http?: number }).http;
    if (status === undefined) continue;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

function messageOf(code: ErrorCode): string {
  return code === 'PAYLOAD_TOO_LARGE' ? `request body over ${MAX_BODY_BYTES} bytes` : ERRORS[code].message;
}

function jsonContent(name: string): Json {
  return { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } };
}

function operationOf(spec: AnyRouteSpec): Json {
  const responses: Json = {};
  const { success, example } = spec;
  responses[String(success.status)] = {
    description: success.description,
    ...(success.schema
      ? {
          content: {
            'application/json': {
              schema: schemaRef(success.schema),
              ...(example.response === undefined ? {} : { example: example.response }),
            },
          },
        }
      : {}),
  };
  for (const [status, codes] of [...errorsOf(spec)].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: codes.map((code) => `${code}: ${messageOf(code)}`).join('; '),
      content: jsonContent('Error'),
    };
  }
  return {
    operationId: spec.name,
    summary: spec.summary,
    ...(spec.isPublic ? { security: [] } : {}),
    parameters: parametersOf(spec),
    ...(spec.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: schemaRef(spec.body), example: example.body } },
          },
        }
      : {}),
    responses,
  };
}

/**
 * SPEC §6: /healthz, /readyz and /metrics, which answerHealth serves (#runtime) before the drain gate and the key
 * check: no key, and no 503 DRAINING (a draining api says so in /readyz).
 */
const HEALTH_PATHS: Record<string, Json> = {
  '/healthz': {
    get: {
      operationId: 'healthz',
      summary: 'Liveness: the process answers.',
      security: [],
      parameters: [],
      responses: { '200': { description: 'alive', content: jsonContent('Health') } },
    },
  },
  '/readyz': {
    get: {
      operationId: 'readyz',
      summary: 'Readiness: the api needs Redis and PostgreSQL, and is not ready while draining.',
      security: [],
      parameters: [],
      responses: {
        '200': { description: 'every check is ok', content: jsonContent('Readiness') },
        '503': { description: 'a check failed or the api is draining', content: jsonContent('Readiness') },
      },
    },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics, in the text exposition format.',
      security: [],
      parameters: [],
      responses: {
        '200': { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
        '500': { description: 'INTERNAL: the metrics could not be collected', content: jsonContent('Error') },
      },
    },
  },
};

export function openApiDocument(routes: readonly Route[]): Json {
  const paths: Record<string, Json> = { ...HEALTH_PATHS };
  for (const { spec } of routes) {
    const path = openApiPath(spec.path);
    paths[path] = { ...paths[path], [spec.method]: operationOf(spec) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'shop-broker REST API',
      version: '1',
      description:
        'The back office and operator API of the shop message broker (SPEC §6). Every /v1 route but this ' +
        'document and the health paths (/healthz, /readyz, /metrics) needs `Authorization: Bearer <API key>`. ' +
        'Errors answer `{error:{code,message}}`. A 503 LOG_UNAVAILABLE on a write leaves its outcome unknown (a ' +
        'stalled Redis may still apply it): retry a notify with the same req_id or Idempotency-Key.',
    },
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'one of API_KEYS' } },
      schemas: Object.fromEntries(NAMED.map(([name, schema]) => [name, plain(schema)])),
    },
  };
}
