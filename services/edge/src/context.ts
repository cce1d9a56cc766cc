// What a session needs from its edge, as one explicit object (built in index.ts).

import type { EventLog, HandleInput, HandleOutcome, Inbox, Presence } from '#eventlog';
import type { EventOf } from '#events';
import type { Config, DeviceTokens, Logger } from '#runtime';
import type { EdgeMetrics } from './metrics';
import type { Session } from './session';

export interface EdgeContext {
  config: Config['edge'];
  edgeId: string;
  /** `edge:<id>`, the source of every event this edge appends. */
  source: string;
  log: Logger;
  eventLog: EventLog;
  inbox: Inbox;
  tokens: DeviceTokens;
  metrics: EdgeMetrics;
  now(): number;
  /** Keeps a frame's work visible to drain() and stop(), which wait for it. */
  track(work: Promise<void>): void;
  /** Lists a connection on this edge before its login is recorded; LOG_UNAVAILABLE when Redis is away. */
  list(presence: Presence): Promise<void>;
  /**
   * Whether a listing sent before a login script is applied before it without waiting for its reply: true on one
   * Redis (one connection, one write, in order), false on a Cluster (the two keys live on different nodes).
   */
  listsInOrder: boolean;
  /** Unlists a connection whose login was refused. */
  unlist(connId: string): void;
  /** A login is being recorded: deliveries to the connection go to the session from now on. */
  route(session: Session): void;
  /** The login was refused: stop routing to the session, and hand back the frames it held for a retry. */
  unroute(session: Session, held: readonly string[]): void;
  /** Pushes that could not be written (the connection closed or is gone): retried through BullMQ (SPEC §3). */
  bounce(frames: readonly string[]): void;
  /** A session logged in: route to it, and close the connection it replaced (4409). */
  adopt(session: Session, replaced: Presence | null): void;
  /** A session's socket closed: stop routing to it. */
  forget(session: Session): void;
  /**
   * SPEC §10: handles the request a message belongs to (PostgreSQL says which copies exist and whether it is
   * handled; DATABASE_UNAVAILABLE while it is away — the edge's other work never needs it).
   */
  handleRequest(input: HandleInput): Promise<HandleOutcome>;
  /**
   * Resolves when the acks gathered for the next Redis write are due (EDGE_ACK_LINGER_MS): the acks of every
   * connection that wait for it are sent in one write (auto-pipelined), instead of one write and one Redis
   * wake-up each.
   */
  ackTurn(): Promise<void>;
  /**
   * Resolves once the acks now waiting for their turn have been handed to Redis (at once when none waits). A
   * handle waits for it, so that the handler's own ack of the copy it handles is recorded first: a handle takes
   * its own copy out of the inbox with nothing kept (it gets no `handled` notice), and a later ack of it would find
   * nothing to mark delivered. Other mains' acks arriving after the handle are recorded anyway (ack-4.lua).
   */
  acksAhead(): Promise<void>;
  /** Acks `handled` notices of a device (by its copies' ids). */
  ackNotices(shopId: string, clientId: string, copyIds: string[]): Promise<number>;
  /** Appends ConnectionClosed; keeps retrying while Redis is away, so presence never stays stale. */
  recordClose(event: EventOf<'ConnectionClosed'>): Promise<void>;
}
