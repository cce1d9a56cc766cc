// The original back office's endpoints (SPEC §9.2) at API_LEGACY_PREFIX: its paths, its parameters (query, form or
// JSON) and its answers, `{code:0|1, msg, time, data}` with HTTP 200 for a handled request. Each runs the code
// path of the /v1 route that does the same (handle, notify, main-online), so the two can never disagree; only
// the listing has its own query (oldest first, not yet handled). Behind the API keys, like /v1.
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import {
  BrokerError,
  isBrokerError,
  LEGACY_NO_MAIN_DEVICE,
  legacyAnswer,
  legacyMessageOf,
  phpJson,
  readLegacyDeal,
  readLegacyNotify,
  type rest,
} from '#events';
import { asBrokerError, isBodyError, MAX_BODY_BYTES } from './app';
import type { ApiContext } from './context';
import { messageOf, selectUnhandledMessages } from './queries';
import type { Reply, Route } from './route';

/** messageList lists at most this many, oldest first: handling them brings the next ones up. */
export const LEGACY_LIST_LIMIT = 1000;

type Outcome = { msg: string; data?: unknown };

/**
 * The router, to mount at API_LEGACY_PREFIX. `routes` is the /v1 route table (handleMessage, notify and mainOnline
 * are run from it); `authenticate` is the API-key check of /v1.
 */
export function legacyRouter(ctx: ApiContext, routes: readonly Route[], authenticate: RequestHandler) {
  const v1 = (name: string): Route => {
    const route = routes.find((r) => r.spec.name === name);
    if (!route) throw new Error(`the /v1 route ${name} is missing`);
    return route;
  };
  const handle = v1('handleMessage');
  const notify = v1('notify');
  const mainOnline = v1('mainOnline');
  // A route's success body has its documented schema (rest.ts), which the casts of its callers below name.
  const run = async (route: Route, raw: Parameters<Route['inputOf']>[0]) => {
    const reply = await route.spec.run(route.inputOf(raw));
    if (reply.status >= 400) throw refusalOf(reply);
    return reply.body;
  };
  const noHeader = () => undefined;

  const router = express.Router();
  router.use(authenticate);
  router.use(
    express.json({ limit: MAX_BODY_BYTES }),
    express.urlencoded({ extended: true, limit: MAX_BODY_BYTES }),
  );

  router.get(
    '/messageList/shop_id/:shopId',
    answered(ctx, async (req) => {
      const shopId = String(req.params.shopId);
      const rows = await selectUnhandledMessages(ctx.pool, shopId, LEGACY_LIST_LIMIT);
      return { msg: 'ok', data: rows.map((row) => legacyMessageOf(messageOf(row))) };
    }),
  );

  // The original took deal's parameters from anywhere (ThinkPHP's input()): its path, the query, a form, JSON.
  const deal = answered(ctx, async (req) => {
    const input = readLegacyDeal({ ...req.query, ...bodyOf(req), ...req.params });
    if (typeof input === 'string') throw new BrokerError('INVALID_INPUT', input);
    try {
      const message = (await run(handle, {
        params: { id: input.id },
        query: {},
        body: { status: input.status },
        header: noHeader,
      })) as rest.MessageView;
      return { msg: 'ok', data: legacyMessageOf(message) };
    } catch (err) {
      // The handle is recorded; only the projection was slow to show it. For the back office it is done.
      if (isBrokerError(err) && err.code === 'PROJECTION_TIMEOUT')
        return { msg: 'handled; the list shows it shortly', data: { id: input.id, status: input.status } };
      throw err;
    }
  });
  router.get('/deal', deal);
  router.post('/deal', deal);
  router.get('/deal/id/:id/status/:status', deal);
  router.post('/deal/id/:id/status/:status', deal);

  router.get(
    '/check_online_main/shop_id/:shopId',
    answered(ctx, async (req) => {
      const online = (await run(mainOnline, {
        params: { shopId: req.params.shopId },
        query: {},
        body: undefined,
        header: noHeader,
      })) as { online: boolean; devices: Array<{ client_id: string }> };
      return {
        msg: 'ok',
        data: { online: online.online ? 1 : 0, client_ids: online.devices.map((d) => d.client_id) },
      };
    }),
  );

  router.post(
    '/notify_main',
    answered(ctx, async (req) => {
      const fields = readLegacyNotify(withFormObjects(bodyOf(req)));
      if (typeof fields === 'string') throw new BrokerError('INVALID_INPUT', fields);
      const accepted = (await run(notify, {
        params: { shopId: fields.shopId },
        query: {},
        body: {
          from_client_id: fields.fromClientId,
          table_id: fields.table_id,
          type: fields.type,
          status: fields.status,
          data: fields.data,
          user_info: fields.user_info,
        },
        header: (name) => req.get(name),
      })) as { event_id: string };
      return { msg: 'ok', data: { event_id: accepted.event_id } };
    }),
  );

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const error = asBrokerError(err);
    const line = { code: error.code, method: req.method, url: req.originalUrl };
    if (!isBrokerError(err) && !isBodyError(err)) ctx.log.error({ ...line, err }, 'legacy request failed');
    else ctx.log.info({ ...line, reason: error.message }, 'legacy request refused');
    send(res, statusOf(error), legacyAnswer(1, legacyTextOf(error), ctx.nowMs(), dataOf(err)));
  });
  return router;
}

/** An express handler answering `{code:0, msg, time, data}`; a failure goes to the router's error handler. */
function answered(ctx: ApiContext, run: (req: Request) => Promise<Outcome>): RequestHandler {
  return async (req, res) => {
    const outcome = await run(req);
    send(res, 200, legacyAnswer(0, outcome.msg, ctx.nowMs(), outcome.data ?? []));
  };
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type('application/json').send(phpJson(body));
}

/**
 * HTTP 200 for a request the broker handled, refused or not (the original's convention: `code` says which); 401
 * without a key; an outage or a fault keeps its 5xx, so load balancers and retries still see it.
 */
function statusOf(error: BrokerError): number {
  if (error.code === 'UNAUTHORIZED') return 401;
  const status = error.spec.http ?? 500;
  return status >= 500 ? status : 200;
}

/** The refusal's message; a sub's notify to a shop without a main gets the original's words. */
function legacyTextOf(error: BrokerError): string {
  return error.code === 'NO_MAIN_DEVICE' ? LEGACY_NO_MAIN_DEVICE : error.message;
}

/** What a refusal carries besides its message (a 409 of a handle names who handled it), else `[]`. */
function dataOf(err: unknown): unknown {
  // Any error may carry `data`: refusalOf's do, and so may a route's own (a 409 naming who handled a message).
  const data = (err as { data?: unknown } | null)?.data;
  return data === undefined ? [] : data;
}

/** A /v1 reply with an error status, as the error it stands for. */
function refusalOf(reply: Reply): BrokerError {
  const body = (reply.body ?? {}) as { error?: { code?: string; message?: string }; data?: unknown };
  const error = new BrokerError(reply.status === 409 ? 'CONFLICT' : 'INVALID_INPUT', body.error?.message);
  return Object.assign(error, { data: body.data ?? body });
}

function bodyOf(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}

/** A form carries data and user_info as JSON text, or as nested fields (`data[dish]=noodles`), or empty. */
function withFormObjects(body: Record<string, unknown>): Record<string, unknown> {
  const fields = { ...body };
  for (const name of ['data', 'user_info']) {
    const value = fields[name];
    if (value === '') fields[name] = null;
    else if (typeof value === 'string') fields[name] = parsedOrText(value);
  }
  return fields;
}

/** JSON text parsed; anything else stays the text it is, which the schema then refuses with a reason. */
function parsedOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
