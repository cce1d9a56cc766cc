// The back-office console at /console: its page and assets, sign-in and sign-out, and its JSON endpoints under
// /console/api. Those run the same route objects as /v1 (devices, messages, connections) plus the console's own
// views (overview, timeline, operations), authorised by a session cookie instead of a bearer key, so /v1 keeps
// one way in. Errors go to the app's one error middleware.
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { BrokerError } from '#events';
import { packageFile, type ReadinessProbe } from '#runtime';
import type { ApiContext } from '../context';
import { connectionRoutes } from '../routes/connections';
import { deviceRoutes } from '../routes/devices';
import { messageRoutes } from '../routes/messages';
import { clearedSessionCookie, cookieValue, SESSION_COOKIE, sessionCookie } from './cookie';
import { mountRoutes } from './mount';
import { operationsRoute } from './operations';
import { overviewRoute } from './overview';
import { pushesRoute } from './pushes';
import { ConsoleSessions, SESSION_MAX_AGE_S } from './session';
import { timelineRoute } from './timeline';

/** The header a console write must carry: a cross-site form cannot set it, and no CORS lets a script do so. */
export const CSRF_HEADER = 'x-console-request';

const PAGE_DIR = fileURLToPath(packageFile('services/api/console/'));
// Only the console's own files: no inline script or style, no other origin, never framed.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface ConsoleOptions {
  /** The api's own readiness, shown on the operations view. */
  probe: ReadinessProbe;
}

export interface ConsoleRouter extends Router {
  /** Releases what the console opened (the retry queue's connection); call when the api stops. */
  close(): Promise<void>;
}

/** The router to mount at /console. */
export function consoleRouter(ctx: ApiContext, options: ConsoleOptions): ConsoleRouter {
  const sessions = new ConsoleSessions(ctx.redis, ctx.keys, ctx.config.api.keys, ctx.nowMs);
  const router = express.Router();
  router.use(securityHeaders);
  router.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.sendFile('index.html', { root: PAGE_DIR });
  });
  router.use(
    '/assets',
    express.static(`${PAGE_DIR}assets`, {
      index: false,
      redirect: false,
      setHeaders: (res) => res.set('Cache-Control', 'no-cache'),
    }),
  );

  const api = express.Router();
  api.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  api.post(
    '/session',
    requireCsrfHeader,
    express.json({ limit: 4096 }),
    async (req: Request, res: Response) => {
      const key = (req.body as { key?: unknown } | undefined)?.key;
      if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
        throw new BrokerError('INVALID_INPUT', 'body: expected {"key": "<API key>"}');
      }
      const id = await sessions.signIn(key);
      if (id === null) throw new BrokerError('UNAUTHORIZED');
      res.set('Set-Cookie', sessionCookie(id, SESSION_MAX_AGE_S, req.secure));
      res.status(204).end();
    },
  );
  api.delete('/session', requireCsrfHeader, async (req: Request, res: Response) => {
    await sessions.signOut(cookieValue(req.get('cookie'), SESSION_COOKIE));
    res.set('Set-Cookie', clearedSessionCookie(req.secure));
    res.status(204).end();
  });
  api.use(async (req: Request, _res: Response, next: NextFunction) => {
    const isLive = await sessions.isLive(cookieValue(req.get('cookie'), SESSION_COOKIE));
    next(isLive ? undefined : new BrokerError('UNAUTHORIZED', 'sign in to the console'));
  });
  api.use(requireCsrfHeader);
  api.get('/session', (_req, res) => {
    res.json({ signed_in: true });
  });
  const operations = operationsRoute(ctx, options.probe);
  mountRoutes(api, [
    overviewRoute(ctx),
    timelineRoute(ctx),
    pushesRoute(ctx),
    operations.route,
    ...deviceRoutes(ctx),
    ...messageRoutes(ctx),
    ...connectionRoutes(ctx),
  ]);
  router.use('/api', api);
  return Object.assign(router, { close: operations.close });
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  });
  next();
}

/** SameSite=Strict already keeps the cookie off cross-site requests; the header is the second lock. */
function requireCsrfHeader(req: Request, _res: Response, next: NextFunction): void {
  const isWrite = req.method !== 'GET' && req.method !== 'HEAD';
  next(
    isWrite && req.get(CSRF_HEADER) !== '1'
      ? new BrokerError('INVALID_INPUT', `console writes need the header ${CSRF_HEADER}: 1`)
      : undefined,
  );
}
