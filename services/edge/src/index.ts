// The edge: terminates device sockets, authenticates, validates frames and appends events. It keeps no business
// state beyond its live sockets and the routes to them; kill it and devices reconnect to another edge.
import type { AddressInfo } from 'node:net';
import { EventLog, type Presence, PresenceBook } from '#eventlog';
import { decodeEdgeCommand, encodeEdgeCommand, Keys } from '#events';
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
import { edgeMetrics } from './metrics';
import { isSendableCloseCode } from './protocol';
import { createEdgeServer } from './server';
import { Session } from './session';
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
    probe: () => readiness(),
    isDraining: () => isDraining,
    onSocket: (socket, request) => table.add(new Session(ctx, socket, request)),
  });
  const now = deps.now ?? Date.now;
  const source = `edge:${edgeId}`;
  const keys = new Keys(config.redis.prefix, config.shards);
  const redis = createRedis(config.redis, log, { name: `edge-${edgeId}`, failFast: true });
  const subscriber = duplicateRedis(redis, log, config.redis, `edge-${edgeId}-sub`);
  await whenRedisReady(redis);
  const eventLog = new EventLog(redis, keys);
  const presence = new PresenceBook(redis, keys);
  const metrics = edgeMetrics();
  const table = new ConnectionTable({ redis, keys, eventLog, metrics, log, edgeId, source });
  const inFlight = new Set<Promise<void>>();
  let isDraining = false;

  const ctx: EdgeContext = {
    config: config.edge,
    edgeId,
    source,
    log,
    eventLog,
    tokens: new DeviceTokens(config.tokens.secret, config.tokens.ttlS),
    metrics,
    now,
    track(work) {
      inFlight.add(work);
      work.finally(() => inFlight.delete(work)).catch((err) => log.error({ err }, 'untracked failure'));
    },
    list: (entry) => table.list(entry),
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
      .publish(
        keys.edgeChannel(target.edge_id),
        encodeEdgeCommand({ kind: 'close', conn_id: target.conn_id, code, reason }),
      )
      .catch((err: Error) =>
        // Pub/sub is at most once anyway: the older socket's device was replaced in presence, so it gets no
        // deliveries; it is closed when its edge next hears of it or the device next writes.
        log.warn({ conn_id: target.conn_id, reason: err.message }, 'could not close replaced connection'),
      );
  }

  // Deliveries and closes sent to this edge by the dispatcher and the api. A malformed command is logged and
  // dropped: it comes from inside the broker, but must not take the edge down with it.
  subscriber.on('message', (_channel: string, text: string) => {
    const command = decodeEdgeCommand(text);
    if (!command) return log.warn({ size: text.length }, 'undecodable edge command ignored');
    const session = table.get(command.conn_id);
    if (!session) return; // the device moved or left; the dispatcher's retries and the inbox cover it
    if (command.kind === 'close') {
      if (isSendableCloseCode(command.code)) return session.close(command.code, String(command.reason ?? ''));
      return log.warn({ close_code: command.code }, 'edge command with an unusable close code ignored');
    }
    let sent = 0;
    for (const frame of command.frames) {
      if (typeof frame !== 'string') {
        log.warn({ conn_id: command.conn_id }, 'edge command with a frame that is not text ignored');
        break;
      }
      if (!session.send(frame)) break;
      sent += 1;
    }
    metrics.delivered.inc(sent);
  });
  await subscriber.subscribe(keys.edgeChannel(edgeId));

  // A previous run of this edge id may have died with sockets open: record their closes before serving.
  const earlier = await table.recordEarlierRun(now());
  if (earlier > 0) log.info({ connections: earlier }, 'closes of an earlier run recorded');
  const upkeep = startUpkeep({
    presence,
    table,
    edgeId,
    pingIntervalMs: config.edge.pingIntervalMs,
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
    { port, tls: Boolean(config.edge.tls), mutual_tls: Boolean(config.edge.tls?.caFile) },
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
      ['close subscriber', () => closeRedis(subscriber)],
      ['close redis', () => closeRedis(redis)],
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
