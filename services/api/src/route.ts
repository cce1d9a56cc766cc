// One route of the REST API as data: its path, input schemas, answers, errors, an example and what it runs.
// app.ts mounts the table and openapi.ts documents the same table, so the document cannot miss a route.
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import type { Request, Response } from 'express';
import { BrokerError, type Checker, compile, type ErrorCode, ShopId } from '#events';

export type Method = 'get' | 'post' | 'delete';

/** Largest request body: the WebSocket frame default, so HTTP cannot record what a device could not send. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** A request header, lower-case name; the first value when repeated. */
  header(name: string): string | undefined;
}

export interface Reply {
  status: number;
  /** Sent as JSON; absent for 204. */
  body?: unknown;
}

export interface HeaderDoc {
  name: string;
  description: string;
  schema: TSchema;
}

export interface RouteSpec<P extends TObject, Q extends TObject, B extends TSchema> {
  method: Method;
  /** An express path: `/v1/shops/:shopId/devices`. */
  path: string;
  /** The OpenAPI operationId. */
  name: string;
  summary: string;
  /** No API key needed (only the OpenAPI document itself). */
  isPublic?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  headers?: HeaderDoc[];
  success: { status: number; description: string; schema?: TSchema };
  /**
   * Conditions the route's own code answers with. openapi.ts adds what the app answers around every route: bad
   * input, a refused body, no API key, draining and an internal fault.
   */
  errors: ErrorCode[];
  /** A request the running API accepts, and what it answers; published in openapi.json and replayed by a test. */
  example: {
    params?: Static<P>;
    query?: Static<Q>;
    body?: Static<B>;
    headers?: Record<string, string>;
    response?: unknown;
  };
  // Method syntax on purpose: a route with narrower inputs is still a Route (bivariant parameters).
  run(input: RouteInput<Static<P>, Static<Q>, Static<B>>): Promise<Reply>;
}

export type AnyRouteSpec = RouteSpec<TObject, TObject, TSchema>;

export interface Route {
  readonly spec: AnyRouteSpec;
  /** Validates the raw request parts; throws INVALID_INPUT naming what is wrong. */
  inputOf(raw: {
    params: unknown;
    query: unknown;
    body: unknown;
    header(name: string): string | undefined;
  }): Parameters<AnyRouteSpec['run']>[0];
}

const ANY_OBJECT = compile(Type.Object({}));

/** Compiles a route's schemas once; the handler only ever sees input that passed them. */
export function defineRoute<P extends TObject, Q extends TObject, B extends TSchema>(
  spec: RouteSpec<P, Q, B>,
): Route {
  const params = spec.params ? compile(spec.params) : ANY_OBJECT;
  const query = spec.query ? compile(spec.query) : ANY_OBJECT;
  const body = spec.body ? compile(spec.body) : null;
  return {
    spec: spec as unknown as AnyRouteSpec, // erases the input types; inputOf has checked them
    inputOf(raw) {
      const input = {
        params: checked('path', params, raw.params),
        query: checked('query', query, spec.query ? withIntegers(spec.query, raw.query) : {}),
        body: undefined as unknown,
        header: raw.header,
      };
      if (body) {
        if (raw.body === undefined) throw new BrokerError('INVALID_INPUT', 'body: expected a JSON object');
        input.body = checked('body', body, raw.body);
      }
      return input;
    },
  };
}

/**
 * Query values arrive as strings: "50" becomes 50 where the schema wants an integer, and nothing else is
 * coerced (TypeBox's Value.Convert would also turn "1.5" into 1).
 */
function withIntegers(schema: TObject, query: unknown): Record<string, unknown> {
  const values: Record<string, unknown> = { ...(query as Record<string, unknown>) };
  for (const [name, property] of Object.entries(schema.properties)) {
    const value = values[name];
    const isInteger = (property as { type?: unknown }).type === 'integer';
    if (isInteger && typeof value === 'string' && /^-?\d{1,15}$/.test(value)) values[name] = Number(value);
  }
  return values;
}

function checked<T>(where: string, checker: Checker<T>, value: unknown): T {
  if (checker.is(value)) return value;
  throw new BrokerError('INVALID_INPUT', `${where} ${checker.explain(value)}`);
}

/** Path parameters shared by the shop routes. */
export const ShopPath = Type.Object({ shopId: ShopId });

/** The express handler of a route: its input from the request, its reply as the response. Errors go to the app's one error middleware. */
export function handlerOf(route: Route) {
  return async (req: Request, res: Response): Promise<void> => {
    const input = route.inputOf({
      params: req.params,
      query: req.query,
      body: req.body,
      header: (name) => req.get(name),
    });
    const reply = await route.spec.run(input);
    res.status(reply.status);
    if (reply.body === undefined) res.end();
    else res.json(reply.body);
  };
}
