// The edge: terminates device sockets, authenticates, validates frames and appends events. It keeps no business
// state beyond its live sockets and the routes to them; kill it and devices reconnect to another edge.
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import {
  ackNotices,
  archiveBackedRecords,
  type Bounce,
  EventLog,
  handleRequest,
  Inbox,
  type Presence,
  PresenceBook,
  recordBounces,
} from '#eventlog';
import { decodeEdgeCommand, encodeEdgeCommand, isNoticeId, Keys, messageIdOfFrame } from '#events';
import {
  type Config,
  ConfigError,
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
import { ConnectionTable } from './connections';
import type { EdgeContext } from './context';
import { LegacySession } from './legacy-session';
import { countSockets, edgeMetrics } from './metrics';
import { isSendableCloseCode } from './protocol';
import { createEdgeServer } from './server';
import { Session } from './session';
import { subscribeDeliveries } from './subscription';
import { startUpkeep } from './upkeep';

export interface EdgeHandle extends ServiceHandle {
  readonly port: number;
  readonly edgeId: string;
  readonly readiness: ReadinessProbe;
  /** Number of open sockets. */
  connectionCount(): number;
  /** SIGHUP: re-read the certificate files for new handshakes; unusable files are logged and ignored. */
  reloadTls(): void;
}

/** Sessions whose backlogs are read at once when the subscription comes back. */
const RECOVERY_SLICE = 200;

export interface EdgeDeps {
  log: Logger;
  now?: () => number;
}

export async function start(config: Config, deps: EdgeDeps): Promise<EdgeHandle> {
  const edgeId = config.edge.id;
  // Every event this edge appends carries its id (source `edge:<id>`, edge_id), which the catalogue bounds.
  if (edgeId.length < 1 || edgeId.length > 128)
    throw new ConfigError('EDGE_ID', '1 to 128 characters', edgeId);
  const log = deps.log.child({ svc: 'edge', edge_id: edgeId });
  // The listener first: unusable certificate files stop the start before anything is connected.
  const edge = createEdgeServer(config.edge, {
    log,
    probe: () => readiness(),
    isDraining: () => isDraining,
    onSocket: (socket, request, dialect) =>
      table.add(
        dialect === 'legacy' ? new LegacySession(ctx, socket, request) : new Session(ctx, socket, request),
      ),
  });
  const now = deps.now ?? Date.now;
  const source = `edge:${edgeId}`;
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = createRedis(config.redis, log, { name: `edge-${edgeId}`, failFast: true });
  const subscriber = duplicateRedis(redis, log, config.redis, `edge-${edgeId}-sub`, {
    shardedSubscriber: true,
  });
  await whenRedisReady(redis);
  // Only `handle` and the rare req_id that must be looked up in the archive (a resend after the records' window)
  // read PostgreSQL: connected on first use, so an edge starts, serves and stays ready while PostgreSQL is away
  // (SPEC §6: the edge needs Redis only).
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2, connectionTimeoutMillis: 2000 });
  pool.on('error', (err) => log.warn({ reason: err.message }, 'idle postgres client lost'));
  const eventLog = new EventLog(redis, keys, archiveBackedRecords(pool, config.consumer.retentionMs));
  const presence = new PresenceBook(redis, keys);
  const metrics = edgeMetrics();
  const table = new ConnectionTable({ redis, keys, eventLog, log, edgeId, source });
  const uncountSockets = countSockets(() => table.counts());
  const inFlight = new Set<Promise<void>>();
  let isDraining = false;

  let nextAckTurn: Promise<void> | undefined;
  const ctx: EdgeContext = {
    config: config.edge,
    edgeId,
    source,
    log,
    eventLog,
    inbox: new Inbox(redis, keys),
    handleRequest: (input) => handleRequest({ redis, keys, pool }, input),
    ackTurn() {
      if (config.edge.ackLingerMs === 0) return Promise.resolve();
      nextAckTurn ??= new Promise<void>((resolve) =>
        setTimeout(() => {
          nextAckTurn = undefined;
          resolve();
        }, config.edge.ackLingerMs),
      );
      return nextAckTurn;
    },
    acksAhead: () => nextAckTurn ?? Promise.resolve(),
    ackNotices: (shopId, clientId, ids) => ackNotices(redis, keys, shopId, clientId, ids),
    tokens: new DeviceTokens(config.tokens.secret, config.tokens.ttlS),
    metrics,
    now,
    track(work) {
      inFlight.add(work);
      work.finally(() => inFlight.delete(work)).catch((err) => log.error({ err }, 'untracked failure'));
    },
    route: (session) => table.route(session),
    unroute(session, held) {
      table.unroute(session);
      bounce(held);
    },
    bounce,
    list: (entry) => table.list(entry),
    listsInOrder: !redis.isCluster,
    unlist: (connId) => table.unlist(connId),
    adopt(session, replaced) {
      table.adopt(session);
      if (replaced && replaced.conn_id !== session.connId)
        closeElsewhere(replaced, 4409, 'replaced by a newer login');
    },
    forget: (session) => table.forget(session),
    recordClose: (event) => table.recordClose(event),
  };

  /** Closes a device's other connection: here directly, elsewhere through that edge's channel. */
  function closeElsewhere(target: Presence, code: number, reason: string) {
    const local = table.get(target.conn_id);
    if (local) return local.close(code, reason);
    if (target.edge_id === edgeId) return; // ours, already gone
    redis
      .spublish(
        keys.edgeChannelOfShop(target.shop_id, target.edge_id),
        encodeEdgeCommand({ kind: 'close', conn_id: target.conn_id, code, reason }),
      )
      .catch((err: Error) =>
        // Pub/sub is at most once anyway: the older socket's device was replaced in presence, so it gets no
        // deliveries; it is closed when its edge next hears of it or the device next writes.
        log.warn({ conn_id: target.conn_id, reason: err.message }, 'could not close replaced connection'),
      );
  }

  /**
   * Hands pushes that could not be written back to the dispatchers, which retry them through BullMQ (SPEC §3: the
   * edge no longer held the connection). Broadcasts are best effort and are not handed back.
   */
  function bounce(frames: readonly string[]): void {
    const bounces: Bounce[] = [];
    for (const frame of frames) {
      // Messages only: a `handled` notice is filed in the inbox before it is pushed, so the device's next login
      // (the only place it can be now) gets it with the backlog.
      const tracked = messageIdOfFrame(frame);
      if (tracked === null || isNoticeId(tracked)) continue;
      const { id, shop_id, attempt } = JSON.parse(frame) as { id: string; shop_id: string; attempt: number };
      bounces.push({ shop: shop_id, id, attempt });
    }
    if (bounces.length === 0) return;
    metrics.bounced.inc(bounces.length);
    recordBounces(redis, keys, bounces).catch((err: Error) =>
      // The devices get these with their next login's backlog; only the retry is lost.
      log.warn({ count: bounces.length, reason: err.message }, 'bounced pushes not recorded'),
    );
  }

  // Deliveries and closes sent to this edge by the append, the dispatcher and the api. A malformed command is logged
  // and dropped: it comes from inside the broker, but must not take the edge down with it.
  function obey(text: string) {
    const command = decodeEdgeCommand(text);
    if (!command) return log.warn({ size: text.length }, 'undecodable edge command ignored');
    const session = table.get(command.conn_id);
    if (command.kind === 'close') {
      if (!session) return; // the device moved or left
      if (isSendableCloseCode(command.code)) return session.close(command.code, String(command.reason ?? ''));
      return log.warn({ close_code: command.code }, 'edge command with an unusable close code ignored');
    }
    const frames = command.frames.filter((frame): frame is string => typeof frame === 'string');
    if (frames.length < command.frames.length)
      log.warn({ conn_id: command.conn_id }, 'edge command with frames that are not text; those ignored');
    bounce(session ? session.deliver(frames) : frames);
  }
  const subscription = await subscribeDeliveries(
    subscriber,
    redis,
    keys.edgeChannels(edgeId),
    { message: obey, resumed: () => ctx.track(recoverDeliveries()), isDraining: () => isDraining },
    log,
  );

  // Redis pub/sub keeps nothing for a subscriber that is away (SPEC §3): after the subscription is back, every
  // connection's backlog is pushed again (each session skips what it already wrote), a slice at a time.
  async function recoverDeliveries(): Promise<void> {
    const sessions = [...table.loggedIn()];
    if (sessions.length === 0) return; // a Cluster's subscribers starting up report themselves like a reconnect
    log.info({ connections: sessions.length }, 'subscription back; pushing backlogs again');
    for (let i = 0; i < sessions.length; i += RECOVERY_SLICE) {
      const slice = sessions.slice(i, i + RECOVERY_SLICE);
      const unwritten = await Promise.all(slice.map((session) => session.pushBacklog()));
      bounce(unwritten.flat());
    }
  }

  // A previous run of this edge id may have died with sockets open: record their closes before serving.
  const earlier = await table.recordEarlierRun(now());
  if (earlier > 0) log.info({ connections: earlier }, 'closes of an earlier run recorded');
  const upkeep = startUpkeep({
    presence,
    table,
    edgeId,
    pingIntervalMs: config.edge.pingIntervalMs,
    ackTimeoutMs: config.edge.ackTimeoutMs,
    now,
    log,
  });
  await upkeep.beat();

  const readiness = readinessOf({ redis: () => checkRedis(redis) }, () => isDraining);
  await new Promise<void>((resolve, reject) => {
    edge.server.once('error', reject);
    edge.server.listen(config.edge.port, config.edge.host, () => resolve());
  });
  const port = (edge.server.address() as AddressInfo).port;
  log.info(
    {
      port,
      tls: Boolean(config.edge.tls),
      mutual_tls: Boolean(config.edge.tls?.caFile),
      legacy_path: config.edge.legacy?.path ?? null,
    },
    'edge listening',
  );

  const drain = once(async () => {
    isDraining = true;
    // SPEC §7: close sockets with 1001 spread over the drain window, so reconnects do not arrive as one burst;
    // each socket's frames already received are answered first.
    const open = table.all();
    const slices = Math.max(1, Math.min(open.length, 20));
    const closing: Array<Promise<void>> = [];
    for (let i = 0; i < slices; i++) {
      const from = Math.floor((i * open.length) / slices);
      const to = Math.floor(((i + 1) * open.length) / slices);
      for (const session of open.slice(from, to)) closing.push(session.closeForDrain());
      if (i < slices - 1) await delay(config.edge.drainMs / slices);
    }
    await Promise.allSettled(closing);
    await Promise.allSettled([...inFlight]);
    log.info({ closed: open.length }, 'edge drained');
  });

  const stop = once(async () => {
    await drain();
    await runSteps(log, [
      ['stop timers', () => upkeep.stop()],
      ['close sockets', () => closeAllSockets()],
      ['record closes', () => Promise.allSettled([...inFlight])],
      ['settle owed writes', () => table.settleOwed()],
      // While writes are owed the edge stays listed: its heartbeat stops, and the dead-edge sweep records them.
      ['leave edge list', () => (table.owesWrites ? undefined : presence.forgetEdge(edgeId))],
      ['close server', () => closeServer(edge.server)],
      ['stop counting sockets', () => uncountSockets()],
      ['stop probing the channels', () => subscription.stop()],
      ['close subscriber', () => closeRedis(subscriber)],
      ['close redis', () => closeRedis(redis)],
      ['close postgres', () => pool.end()],
    ]);
  });

  async function closeAllSockets() {
    for (const session of table.all()) session.close(1001, 'server stopping');
    // Wait (bounded by the sessions' close-handshake timeout) so their ConnectionClosed events are appended.
    const deadline = now() + 3000;
    while (table.size > 0 && now() < deadline) await delay(10);
  }

  return {
    name: 'edge',
    port,
    edgeId,
    readiness,
    drain,
    stop,
    connectionCount: () => table.size,
    reloadTls: () => {
      // Called from a signal handler: a half-written file must not end the process or drop a connection.
      try {
        edge.reloadTls();
        log.info('tls certificates reloaded');
      } catch (err) {
        log.error(
          { reason: (err as Error).message },
          'tls reload failed; the previous certificates stay in use',
        );
      }
    },
  };
}

// ◇ The pure protocol pieces, for unit tests and benchmarks.
export {
  closeCodeOfWsError,
  closeReasonOf,
  closeReasonText,
  isSendableCloseCode,
  RateLimiter,
  replyError,
  replyOk,
} from './protocol';

// ◇ The edge's subscription to its channels, for its integration test.
export { type DeliverySubscription, subscribeDeliveries } from './subscription';
