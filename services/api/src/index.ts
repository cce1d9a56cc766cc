// The api service: the REST API of the back office and operators (SPEC §6). Reads the projections and the live
// state in Redis; writes only through the event log.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { archiveBackedRecords, EventLog, PresenceBook } from '#eventlog';
import { Keys } from '#events';
import {
  type Config,
  checkPostgres,
  checkRedis,
  closeRedis,
  closeServer,
  collectDefaultMetrics,
  connectPostgres,
  createRedis,
  DeviceTokens,
  type Logger,
  once,
  type Pool,
  type RedisClient,
  readinessOf,
  runSteps,
  type ServiceHandle,
  whenRedisReady,
} from '#runtime';
import { apiKeyCheck, createApp } from './app';
import { consoleRouter } from './console';
import type { ApiContext } from './context';
import { legacyRouter } from './legacy';
import { openApiDocument } from './openapi';
import { defineRoute, type Route } from './route';
import { connectionRoutes } from './routes/connections';
import { deviceRoutes } from './routes/devices';
import { messageRoutes } from './routes/messages';
import { notifyRoutes } from './routes/notify';

export interface ApiDeps {
  log: Logger;
  /** Shared clients (tests); the api closes only the clients it created. */
  redis?: RedisClient;
  pool?: Pool;
  nowMs?: () => number;
}

export interface ApiHandle extends ServiceHandle {
  /** The bound port (config port 0 picks a free one). */
  readonly port: number;
}

/** The express app alone, for the test that walks the routes it really serves. */
export { createApp } from './app';
// The pure parts, for the unit tests and the CLI.
export { decodeCursor, encodeCursor, pageOf } from './cursor';
export { openApiDocument, openApiPath } from './openapi';

/** The route table, the OpenAPI document's route included. */
export function routesOf(ctx: ApiContext): Route[] {
  const routes = [
    ...deviceRoutes(ctx),
    ...messageRoutes(ctx),
    ...notifyRoutes(ctx),
    ...connectionRoutes(ctx),
  ];
  let document: unknown;
  const openApi = defineRoute({
    method: 'get',
    path: '/v1/openapi.json',
    name: 'openApi',
    summary: 'This document. Needs no API key.',
    isPublic: true,
    success: { status: 200, description: 'the OpenAPI 3.1 document' },
    errors: [],
    example: {},
    async run() {
      return { status: 200, body: document };
    },
  });
  routes.push(openApi);
  document = openApiDocument(routes);
  return routes;
}

/** Starts the api; resolves once it listens, with Redis and PostgreSQL reachable. */
export async function start(config: Config, deps: ApiDeps): Promise<ApiHandle> {
  const log = deps.log.child({ svc: 'api' });
  collectDefaultMetrics();
  // failFast: with Redis away a write must be refused now (503), not queued and acknowledged late.
  const redis = deps.redis ?? createRedis(config.redis, log, { name: 'api', failFast: true });
  const releaseRedis = () => (deps.redis ? undefined : closeRedis(redis));
  let pool: Pool;
  try {
    await whenRedisReady(redis);
    pool = deps.pool ?? (await connectPostgres(config.databaseUrl, log));
  } catch (err) {
    await releaseRedis();
    throw err;
  }
  const releasePool = () => (deps.pool ? undefined : pool.end());
  const keys = new Keys(config.redis.prefix, config.shards);
  const ctx: ApiContext = {
    config,
    log,
    redis,
    pool,
    keys,
    eventLog: new EventLog(redis, keys, archiveBackedRecords(pool, config.consumer.retentionMs)),
    presence: new PresenceBook(redis, keys),
    tokens: new DeviceTokens(config.tokens.secret, config.tokens.ttlS),
    nowMs: deps.nowMs ?? Date.now,
  };

  let isDraining = false;
  const probe = readinessOf(
    { redis: () => checkRedis(redis), postgres: () => checkPostgres(pool) },
    () => isDraining,
  );
  const consoleApp = consoleRouter(ctx, { probe });
  const routes = routesOf(ctx);
  const legacyPrefix = config.api.legacyPrefix;
  const app = createApp(routes, {
    log,
    apiKeys: config.api.keys,
    probe,
    isDraining: () => isDraining,
    console: consoleApp,
    ...(legacyPrefix === null
      ? {}
      : {
          legacy: {
            prefix: legacyPrefix,
            router: legacyRouter(ctx, routes, apiKeyCheck(config.api.keys)),
          },
        }),
  });
  const server = createServer(app);
  const inFlight = trackInFlight(server);
  try {
    await listen(server, config.api.port, config.api.host);
  } catch (err) {
    await runSteps(log, [
      ['redis', releaseRedis],
      ['postgres', releasePool],
    ]);
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'api listening');

  const drain = once(async () => {
    isDraining = true;
    await inFlight.whenIdle();
  });
  const stop = once(async () => {
    await drain();
    await runSteps(log, [
      ['http server', () => closeServer(server)],
      ['console', () => consoleApp.close()],
      ['redis', releaseRedis],
      ['postgres', releasePool],
    ]);
    log.info('api stopped');
  });
  return { name: 'api', port, drain, stop };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Counts requests being answered, so that drain can wait for them (a handle may wait for its projection). */
function trackInFlight(server: Server) {
  let count = 0;
  let idle: Array<() => void> = [];
  server.on('request', (_req, res) => {
    count++;
    res.once('close', () => {
      count--;
      if (count > 0) return;
      for (const resolve of idle) resolve();
      idle = [];
    });
  });
  return {
    whenIdle: () => (count === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve))),
  };
}
