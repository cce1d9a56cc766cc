// The edge: terminates device sockets, authenticates, validates frames and appends events. It keeps no business
// state beyond its live sockets and the routes to them; kill it and devices reconnect to another edge.
import type { AddressInfo } from 'node:net';
import { EDGE_HEARTBEAT_MS, EventLog, type Presence, PresenceBook } from '#eventlog';
import { createEvent, decodeEdgeCommand, type EventOf, Keys } from '#events';
import {
  type Config,
  checkRedis,
  closeRedis,
  closeServer,
  createRedis,
  DeviceTokens,
  delay,
  duplicateRedis,
  type Logger,
  once,
  type ReadinessProbe,
  readinessOf,
  runSteps,
  type ServiceHandle,
  whenRedisReady,
} from '#runtime';
import type { EdgeContext } from './context';
import { edgeMetrics } from './metrics';
import { createEdgeServer } from './server';
import { Session } from './session';

export interface EdgeHandle extends ServiceHandle {
  readonly port: number;
  readonly edgeId: string;
  readonly readiness: ReadinessProbe;
  /** Number of open sockets. */
  connectionCount(): number;
  /** SIGHUP: re-read the certificate files for new handshakes. */
  reloadTls(): void;
}

export interface EdgeDeps {
  log: Logger;
  now?: () => number;
}

export async function start(config: Config, deps: EdgeDeps): Promise<EdgeHandle> {
  const edgeId = config.edge.id;
  const log = deps.log.child({ svc: 'edge', edge_id: edgeId });
  const now = deps.now ?? Date.now;
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = createRedis(config.redis, log, { name: `edge-${edgeId}`, failFast: true });
  const subscriber = duplicateRedis(redis, log, config.redis, `edge-${edgeId}-sub`);
  await whenRedisReady(redis);
  const eventLog = new EventLog(redis, keys);
  const presence = new PresenceBook(redis, keys);
  const metrics = edgeMetrics();
  const sessions = new Map<string, Session>();
  const inFlight = new Set<Promise<void>>();
  const unrecordedCloses: Array<EventOf<'ConnectionClosed'>> = [];
  const anonymous = new Set<Session>();
  let isDraining = false;

  const ctx: EdgeContext = {
    config: config.edge,
    edgeId,
    source: `edge:${edgeId}`,
    log,
    eventLog,
    tokens: new DeviceTokens(config.tokens.secret, config.tokens.ttlS),
    metrics,
    now,
    track(work) {
      inFlight.add(work);
      work.finally(() => inFlight.delete(work)).catch((err) => log.error({ err }, 'untracked failure'));
    },
    async adopt(session, entry, replaced) {
      sessions.set(session.connId, session);
      anonymous.delete(session);
      metrics.connections.set({ state: 'logged_in' }, sessions.size);
      metrics.connections.set({ state: 'anonymous' }, anonymous.size);
      await redis.hset(keys.edgeConnections(edgeId), session.connId, JSON.stringify(entry));
      if (replaced && replaced.conn_id !== session.connId)
        closeElsewhere(replaced, 4409, 'replaced by a newer login');
    },
    forget(session) {
      sessions.delete(session.connId);
      anonymous.delete(session);
      metrics.connections.set({ state: 'logged_in' }, sessions.size);
      metrics.connections.set({ state: 'anonymous' }, anonymous.size);
    },
    async recordClose(event) {
      try {
        await eventLog.recordClose(event);
        await redis.hdel(keys.edgeConnections(edgeId), event.data.conn_id);
      } catch {
        unrecordedCloses.push(event); // Redis away: retried by the heartbeat until it lands
      }
    },
  };

  /** Closes a device's other connection: here directly, elsewhere through that edge's channel. */
  function closeElsewhere(target: Presence, code: number, reason: string) {
    const local = sessions.get(target.conn_id);
    if (local) return local.close(code, reason);
    if (target.edge_id === edgeId) return; // ours, already gone
    redis
      .publish(
        keys.edgeChannel(target.edge_id),
        JSON.stringify({ kind: 'close', conn_id: target.conn_id, code, reason }),
      )
      .catch((err) =>
        log.warn(
          { conn_id: target.conn_id, reason: (err as Error).message },
          'could not close replaced connection',
        ),
      );
  }

  // Deliveries and closes sent to this edge.
  subscriber.on('message', (_channel: string, text: string) => {
    const command = decodeEdgeCommand(text);
    if (!command) return log.warn({ size: text.length }, 'undecodable edge command ignored');
    const session = sessions.get(command.conn_id);
    if (!session) return; // the device moved or left; the dispatcher's retries and the inbox cover it
    if (command.kind === 'close') return session.close(command.code, command.reason);
    for (const frame of command.frames) if (!session.send(frame)) break;
    metrics.delivered.inc(command.frames.length);
  });
  await subscriber.subscribe(keys.edgeChannel(edgeId));

  // A previous run of this edge id may have died with sockets open: record their closes before serving.
  await sweepOwnConnections();
  async function sweepOwnConnections() {
    const stale = await redis.hvals(keys.edgeConnections(edgeId));
    for (const json of stale) {
      const entry = JSON.parse(json) as Presence;
      if (sessions.has(entry.conn_id)) continue;
      await ctx.recordClose(
        createEvent({
          type: 'ConnectionClosed',
          shopId: entry.shop_id,
          source: ctx.source,
          nowMs: now(),
          data: {
            client_id: entry.client_id,
            conn_id: entry.conn_id,
            edge_id: edgeId,
            reason: 'edge_restart',
          },
        }),
      );
    }
  }

  const heartbeat = setInterval(() => {
    presence.beat(edgeId, now()).then(
      async () => {
        while (unrecordedCloses.length > 0) {
          const event = unrecordedCloses[0]!;
          await eventLog.recordClose(event);
          await redis.hdel(keys.edgeConnections(edgeId), event.data.conn_id);
          unrecordedCloses.shift();
        }
      },
      () => undefined, // Redis away: the outage is logged once by the client; the edge keeps its sockets
    );
  }, EDGE_HEARTBEAT_MS);
  await presence.beat(edgeId, now());

  // Dead-peer detection: one timer for all sockets (ws README, "How to detect and close broken connections").
  const pinger = setInterval(() => {
    for (const session of [...sessions.values(), ...anonymous]) {
      if (session.missedPongs >= 2) {
        session.socket.terminate();
        continue;
      }
      session.missedPongs += 1;
      session.socket.ping();
    }
  }, config.edge.pingIntervalMs);

  const readiness = readinessOf({ redis: () => checkRedis(redis) }, () => isDraining);
  const edge = createEdgeServer(
    config.edge,
    readiness,
    () => isDraining,
    (socket, request) => {
      const session = new Session(ctx, socket, request);
      anonymous.add(session);
      metrics.connections.set({ state: 'anonymous' }, anonymous.size);
    },
  );
  await new Promise<void>((resolve, reject) => {
    edge.server.once('error', reject);
    edge.server.listen(config.edge.port, config.edge.host, () => resolve());
  });
  const port = (edge.server.address() as AddressInfo).port;
  log.info(
    { port, tls: Boolean(config.edge.tls), mutual_tls: Boolean(config.edge.tls?.caFile) },
    'edge listening',
  );

  const drain = once(async () => {
    isDraining = true;
    // SPEC §7: close sockets with 1001 spread over the drain window, so reconnects do not arrive as one burst.
    const open = [...new Set([...sessions.values(), ...anonymous])];
    const windowMs = config.edge.drainMs;
    const slices = Math.max(1, Math.min(open.length, 20));
    for (let i = 0; i < slices; i++) {
      for (const session of open.slice(
        Math.floor((i * open.length) / slices),
        Math.floor(((i + 1) * open.length) / slices),
      )) {
        session.close(1001, 'server draining, reconnect elsewhere', 'drain');
      }
      if (i < slices - 1) await delay(windowMs / slices);
    }
    await Promise.allSettled([...inFlight]);
    log.info({ closed: open.length }, 'edge drained');
  });

  const stop = once(async () => {
    await drain();
    await runSteps(log, [
      ['stop pinging', () => clearInterval(pinger)],
      ['close sockets', () => closeAllSockets()],
      ['record closes', () => Promise.allSettled([...inFlight])],
      ['stop heartbeat', () => clearInterval(heartbeat)],
      ['leave edge list', () => (unrecordedCloses.length === 0 ? presence.forgetEdge(edgeId) : undefined)],
      ['close server', () => closeServer(edge.server)],
      ['close subscriber', () => closeRedis(subscriber)],
      ['close redis', () => closeRedis(redis)],
    ]);
  });

  async function closeAllSockets() {
    const open = [...new Set([...sessions.values(), ...anonymous])];
    for (const session of open) session.close(1001, 'server stopping', 'drain');
    // Wait (bounded) for the close handshakes so their ConnectionClosed events are appended.
    const deadline = now() + 2000;
    while (sessions.size + anonymous.size > 0 && now() < deadline) await delay(10);
  }

  return {
    name: 'edge',
    port,
    edgeId,
    readiness,
    drain,
    stop,
    connectionCount: () => sessions.size + anonymous.size,
    reloadTls: () => {
      edge.reloadTls();
      log.info('tls certificates reloaded');
    },
  };
}

// ◇ The pure protocol pieces, for unit tests and benchmarks.
export { closeReasonOf, RateLimiter, replyError, replyOk } from './protocol';
