// What the edge's integration tests share: an edge started in-process on its own key prefix, and logged-in raw
// sockets. The shop's events as the stream holds them are shopEvents in test/support/log.ts.

import type { ClientOptions } from 'ws';
import { type EdgeHandle, start } from '#edge';
import { EventLog } from '#eventlog';
import { createEvent, type DeviceType } from '#events';
import { DeviceTokens, type Env } from '#runtime';
import {
  blockFixture,
  createTestContext,
  openRaw,
  type RawSocket,
  registerDevice,
  type SpawnedService,
  type TestContext,
  waitForLog,
} from '#test-support';
import { proxyInFrontOf, type TcpProxy } from '../../support/tcp-proxy';

export interface EdgeWorld {
  ctx: TestContext;
  edge: EdgeHandle;
  url: string;
  eventLog: EventLog;
  tokens: DeviceTokens;
  stop(): Promise<void>;
}

export async function startEdgeWorld(overrides: Env = {}): Promise<EdgeWorld> {
  const ctx = await createTestContext(overrides);
  const edge = await start(ctx.config, { log: ctx.log }).catch(async (err: unknown) => {
    await ctx.cleanup();
    throw err;
  });
  return {
    ctx,
    edge,
    url: `ws://127.0.0.1:${edge.port}/ws`,
    eventLog: new EventLog(ctx.redis, ctx.keys),
    tokens: new DeviceTokens(ctx.config.tokens.secret, ctx.config.tokens.ttlS),
    async stop() {
      await edge.stop();
      await ctx.cleanup();
    },
  };
}

/** The block's edge world: started before its tests (after the block's earlier hooks), stopped after them. */
export function edgeWorld(overrides: Env = {}): EdgeWorld {
  return blockFixture<EdgeWorld>(
    async (world) => {
      Object.assign(world, await startEdgeWorld(overrides));
    },
    async (world) => {
      await world.stop?.();
    },
  );
}

export interface EdgeBehindProxy {
  ctx: TestContext;
  edge: EdgeHandle;
  url: string;
  /** Between the edge and Redis: the test stalls or cuts it. */
  proxy: TcpProxy;
}

/** The block's edge reaching Redis through a proxy; the proxy lets traffic through again before the edge stops. */
export function edgeBehindRedisProxy(): EdgeBehindProxy {
  return blockFixture<EdgeBehindProxy>(
    async (world) => {
      const ctx = await createTestContext();
      world.ctx = ctx;
      const redis = await proxyInFrontOf(ctx.config.redis.url);
      world.proxy = redis.proxy;
      world.edge = await start(
        { ...ctx.config, redis: { ...ctx.config.redis, url: redis.url } },
        { log: ctx.log },
      );
      world.url = `ws://127.0.0.1:${world.edge.port}/ws`;
    },
    async (world) => {
      world.proxy?.resume();
      await world.edge?.stop();
      await world.proxy?.close();
      await world.ctx?.cleanup();
    },
  );
}

/** Opens a socket and logs it in; fails the test unless the login is answered with code 0. */
export async function loggedIn(
  url: string,
  token: string,
  extra: Record<string, unknown> = {},
  options: ClientOptions = {},
) {
  const socket = await openRaw(url, options);
  socket.send({ op: 'login', token, ...extra });
  const reply = await socket.next((f) => f.op === 'login');
  if (reply.code !== 0) throw new Error(`login refused: ${JSON.stringify(reply)}`);
  return Object.assign(socket, { connId: (reply.data as { conn_id: string }).conn_id });
}

/** Registers a device and answers its token and token id (to mint variants of the token). */
export async function registered(ctx: TestContext, shopId: string, clientId: string, type: DeviceType) {
  const token = await registerDevice(ctx, shopId, clientId, type);
  const entry = await ctx.redis.hget(ctx.keys.devices(shopId), clientId);
  return { token, tokenId: (JSON.parse(entry!) as { token_id: string }).token_id };
}

/** Revokes a device the way the api does, without closing its sockets (the api publishes that separately). */
export async function revokeQuietly(world: EdgeWorld, shopId: string, clientId: string) {
  return world.eventLog.revoke(
    createEvent({ type: 'DeviceRevoked', shopId, source: 'api', data: { client_id: clientId } }),
  );
}

/** The port an edge started with `broker start edge` listens on, from its 'edge listening' log line. */
export async function listeningPort(service: SpawnedService): Promise<number> {
  await waitForLog(service, '"msg":"edge listening"');
  const line = service
    .output()
    .split('\n')
    .find((l) => l.includes('"msg":"edge listening"'))!;
  return (JSON.parse(line) as { port: number }).port;
}

export type { RawSocket };
