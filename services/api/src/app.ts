// The express app: health paths, the drain gate, API keys, the route table, and the one error middleware that
// turns every failure into `{error:{code,message}}` with the catalogue's HTTP status. No business logic here.
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { BrokerError, ERRORS, isBrokerError } from '#events';
import { answerHealth, counter, histogram, type Logger, type ReadinessProbe } from '#runtime';
import { handlerOf, MAX_BODY_BYTES, type Route } from './route';

export { MAX_BODY_BYTES };

const requests = counter('broker_api_requests_total', 'REST requests answered', [
  'method',
  'route',
  'status',
]);
const latency = histogram(
  'broker_api_request_seconds',
  'REST request duration',
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  ['method', 'route'],
);

export interface AppOptions {
  log: Logger;
  apiKeys: readonly string[];
  probe: ReadinessProbe;
  isDraining(): boolean;
  /** The back-office console (./console), mounted at /console before the catch-all 404. */
  console?: express.Router;
  /** The original back office's endpoints (./legacy, SPEC §9.2), mounted at their prefix before the 404. */
  legacy?: { prefix: string; router: express.Router };
}

export function createApp(routes: readonly Route[], options: AppOptions): express.Express {
  const { log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.use(measure);
  app.use((req, res, next) => {
    if (!answerHealth(req, res, options.probe)) next();
  });
  app.use((_req, _res, next) => {
    // fastify's return503OnClosing: while draining, the load balancer is told to go elsewhere.
    next(options.isDraining() ? new BrokerError('DRAINING') : undefined);
  });

  const authenticate = apiKeyCheck(options.apiKeys);
  const parseJson = express.json({ limit: MAX_BODY_BYTES });
  for (const route of routes) {
    const { spec } = route;
    const steps = spec.isPublic ? [] : [authenticate];
    if (spec.body) steps.push(parseJson);
    app[spec.method](spec.path, ...steps, handlerOf(route));
  }

  if (options.console) app.use('/console', options.console);
  if (options.legacy) app.use(options.legacy.prefix, options.legacy.router);
  app.use('/v1', authenticate); // an unknown /v1 path without a key is 401, not a map of what exists
  app.use((req, _res, next) => next(new BrokerError('NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const error = asBrokerError(err);
    const status = error.spec.http ?? 500;
    const line = { code: error.code, status, method: req.method, url: req.originalUrl };
    // fastify's defaultErrorLog: a server fault is an incident, a client's mistake is not.
    if (!isBrokerError(err) && !isBodyError(err)) log.error({ ...line, err }, 'request failed');
    else if (status >= 500) log.error({ ...line, reason: error.message }, 'request refused');
    else log.info({ ...line, reason: error.message }, 'request refused');
    if (error.code === 'UNAUTHORIZED') res.set('WWW-Authenticate', 'Bearer');
    res.status(status).json({
      error: { code: error.code, message: error.message, ...(error.data ? { data: error.data } : {}) },
    });
  });
  return app;
}

function measure(req: Request, res: Response, next: NextFunction): void {
  const stopTimer = latency.startTimer();
  res.once('finish', () => {
    const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
    stopTimer({ method: req.method, route });
    requests.inc({ method: req.method, route, status: res.statusCode });
  });
  next();
}

/**
 * Bearer keys compared in constant time: both sides are hashed to one length first (timingSafeEqual needs
 * equal lengths), and every key is compared, so neither a key's length nor its position leaks.
 */
export function apiKeyCheck(keys: readonly string[]) {
  const digests = keys.map(sha256);
  return (req: Request, _res: Response, next: NextFunction): void => {
    const match = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '');
    const given = sha256(match?.[1] ?? '');
    let isKnown = false;
    for (const digest of digests) isKnown = timingSafeEqual(digest, given) || isKnown;
    next(match && isKnown ? undefined : new BrokerError('UNAUTHORIZED'));
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** An error from express.json (body-parser): it carries a `type` and a 4xx `status`. */
interface BodyError extends Error {
  type: string;
  status: number;
}

export function isBodyError(err: unknown): err is BodyError {
  return (
    err instanceof Error &&
    typeof (err as Partial<BodyError>).type === 'string' &&
    typeof (err as Partial<BodyError>).status === 'number'
  );
}

/** Any failure as the condition it answers with: a body express.json refused, or an internal error. */
export function asBrokerError(err: unknown): BrokerError {
  if (isBrokerError(err)) return err;
  if (isBodyError(err)) {
    if (err.type === 'entity.parse.failed') return new BrokerError('MALFORMED_JSON');
    if (err.type === 'entity.too.large') {
      return new BrokerError('PAYLOAD_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    }
    if (err.status < 500) return new BrokerError('INVALID_INPUT', err.message);
  }
  return new BrokerError('INTERNAL', ERRORS.INTERNAL.message);
}
