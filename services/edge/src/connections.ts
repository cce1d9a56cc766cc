// The edge's live sockets, and their listing in Redis (the per-edge connection hash a dead-edge sweep reads).
// A listing write that fails while Redis is away is owed and retried by the heartbeat, so a closed connection is
// always recorded closed in the end and presence never stays stale.
import { asLogError, connectionClosedOf, type EventLog, type Presence } from '#eventlog';
import type { EventOf, Keys } from '#events';
import type { Logger, RedisClient } from '#runtime';
import type { SocketCounts } from './metrics';
import type { Session } from './session';

export interface ConnectionTableDeps {
  redis: RedisClient;
  keys: Keys;
  eventLog: EventLog;
  log: Logger;
  edgeId: string;
  source: string;
}

export class ConnectionTable {
  /** Logged-in sessions by connection id. */
  private readonly sessions = new Map<string, Session>();
  private readonly anonymous = new Set<Session>();
  /**
   * Where deliveries and close commands are routed: the logged-in sessions, and those whose login is being
   * recorded (a push can arrive as soon as the login is in Redis, before the edge hears back).
   */
  private readonly routes = new Map<string, Session>();
  private readonly owed: Array<() => Promise<unknown>> = [];
  /** Connections to unlist with the next HDEL (one command for the closes of a tick: a storm closes hundreds). */
  private unlisting: string[] = [];
  private unlisted: Promise<unknown> | null = null;

  constructor(private readonly deps: ConnectionTableDeps) {}

  get size(): number {
    return this.sessions.size + this.anonymous.size;
  }

  get(connId: string): Session | undefined {
    return this.routes.get(connId);
  }

  /** The logged-in sessions. */
  loggedIn(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /** Every open socket, logged in or not. */
  all(): Session[] {
    return [...this.sessions.values(), ...this.anonymous];
  }

  add(session: Session): void {
    this.anonymous.add(session);
  }

  /** A login is being recorded: route to the session from now on. */
  route(session: Session): void {
    this.routes.set(session.connId, session);
  }

  adopt(session: Session): void {
    this.anonymous.delete(session);
    this.sessions.set(session.connId, session);
    this.routes.set(session.connId, session);
  }

  /** The socket closed, or its login was refused. */
  forget(session: Session): void {
    this.anonymous.delete(session);
    if (this.sessions.get(session.connId) === session) this.sessions.delete(session.connId);
    if (this.routes.get(session.connId) === session) this.routes.delete(session.connId);
  }

  /** A login was refused: the session stays open, anonymous, and is not routed to. */
  unroute(session: Session): void {
    if (this.routes.get(session.connId) === session) this.routes.delete(session.connId);
  }

  /** Lists a connection on this edge; LOG_UNAVAILABLE when Redis is away. */
  async list(presence: Presence): Promise<void> {
    const { redis, keys, edgeId } = this.deps;
    try {
      await redis.hset(keys.edgeConnections(edgeId), presence.conn_id, JSON.stringify(presence));
    } catch (err) {
      throw asLogError(err);
    }
  }

  /** Unlists a connection whose login was refused. */
  unlist(connId: string): void {
    const { redis, keys, edgeId } = this.deps;
    this.attempt(() => redis.hdel(keys.edgeConnections(edgeId), connId));
  }

  /**
   * Appends ConnectionClosed and unlists the connection, now or, while Redis is away, as soon as it is back. A
   * connection stays listed until its close is recorded (a sweep after this edge's death records it at most once:
   * close-3.lua), so the unlisting may wait for the other closes of the tick.
   */
  async recordClose(event: EventOf<'ConnectionClosed'>): Promise<void> {
    const { eventLog } = this.deps;
    await this.attempt(() => eventLog.recordClose(event));
    await this.attempt(() => this.unlistWithOthers(event.data.conn_id));
  }

  private unlistWithOthers(connId: string): Promise<unknown> {
    const { redis, keys, edgeId } = this.deps;
    this.unlisting.push(connId);
    this.unlisted ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const ids = this.unlisting;
      this.unlisting = [];
      this.unlisted = null;
      return redis.hdel(keys.edgeConnections(edgeId), ...ids);
    });
    return this.unlisted;
  }

  /** Runs the owed writes in order; stops at the first that fails (Redis still away). */
  async settleOwed(): Promise<void> {
    while (this.owed.length > 0) {
      await this.owed[0]!();
      this.owed.shift();
    }
  }

  get owesWrites(): boolean {
    return this.owed.length > 0;
  }

  /**
   * Closes the sessions whose listing a dead-edge sweep removed (Redis was away long enough for this edge to
   * count as dead): they were recorded closed and dropped from presence, so their devices must log in again.
   */
  async closeSwept(): Promise<number> {
    const { redis, keys, edgeId } = this.deps;
    const listed = new Set(await redis.hkeys(keys.edgeConnections(edgeId)));
    let swept = 0;
    for (const session of this.sessions.values()) {
      if (listed.has(session.connId)) continue;
      session.closeAsSwept();
      swept += 1;
    }
    if (swept > 0)
      this.deps.log.warn({ swept }, 'connections swept while redis was away; asked to reconnect');
    return swept;
  }

  /** Records the closes of connections listed by an earlier run of this edge id (it died with them open). */
  async recordEarlierRun(nowMs: number): Promise<number> {
    const { redis, keys, edgeId, source } = this.deps;
    const stale = await redis.hvals(keys.edgeConnections(edgeId));
    for (const json of stale) {
      const entry = JSON.parse(json) as Presence;
      await this.recordClose(
        connectionClosedOf({ ...entry, edge_id: edgeId }, 'edge_restart', source, nowMs),
      );
    }
    return stale.length;
  }

  private async attempt(write: () => Promise<unknown>): Promise<void> {
    if (this.owed.length > 0) {
      this.owed.push(write); // keep the order: an earlier write is still owed
      return;
    }
    try {
      await write();
    } catch (err) {
      this.deps.log.warn({ reason: (err as Error).message }, 'connection listing owed until redis is back');
      this.owed.push(write);
    }
  }

  /** For `broker_edge_connections`, read when /metrics is scraped (countSockets). */
  counts(): SocketCounts {
    return { loggedIn: this.sessions.size, anonymous: this.anonymous.size };
  }
}
