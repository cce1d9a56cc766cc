// What every route works with: the clients, the event log, the presence book and the clock, built once by
// start(). Also the two Redis moves several routes share: reading live state and telling an edge to close.

import { type EventLog, isRedisUnavailable, type Presence, type PresenceBook } from '#eventlog';
import {
  BrokerError,
  type BrokerEvent,
  type EdgeCommand,
  encodeEdgeCommand,
  explainInvalidEvent,
  type Keys,
} from '#events';
import { type Config, type DeviceTokens, delay, type Logger, type Pool, type RedisClient } from '#runtime';

export interface ApiContext {
  config: Config;
  log: Logger;
  redis: RedisClient;
  pool: Pool;
  keys: Keys;
  eventLog: EventLog;
  presence: PresenceBook;
  tokens: DeviceTokens;
  /** The clock, a parameter so that tests can pin it. */
  nowMs(): number;
}

/** A Redis read; Redis being away answers 503 like a refused write, anything else is a fault. */
export async function readRedis<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (err) {
    // isRedisUnavailable counts every non-reply error as an outage; our own bugs (a bad parse) are not one.
    const isFault = err instanceof TypeError || err instanceof SyntaxError || err instanceof RangeError;
    if (!isFault && isRedisUnavailable(err))
      throw new BrokerError('LOG_UNAVAILABLE', 'event log unavailable, try again');
    throw err;
  }
}

export function liveEdges(ctx: ApiContext): Promise<Set<string>> {
  return readRedis(ctx.presence.liveEdges(ctx.nowMs()));
}

/** How long a close is offered to an edge that is not subscribed (its subscriber reconnecting), and how often. */
const CLOSE_OFFER_MS = 500;
const CLOSE_RETRY_MS = 50;

/**
 * Asks the edge holding a connection to close it; false when no edge took the command within CLOSE_OFFER_MS.
 * Pub/sub is at most once, and PUBLISH's receiver count is its only feedback: 0 means nobody heard it, so the
 * command is offered again for a moment rather than reported sent. A revoked device cannot log in or notify
 * again anyway (the registry is checked in the same atomic step), so a lost close only delays the socket.
 */
export async function closeConnection(
  ctx: ApiContext,
  connection: Pick<Presence, 'conn_id' | 'edge_id'>,
  code: number,
  reason: string,
): Promise<boolean> {
  const command: EdgeCommand = { kind: 'close', conn_id: connection.conn_id, code, reason };
  const channel = ctx.keys.edgeChannel(connection.edge_id);
  const text = encodeEdgeCommand(command);
  const deadline = performance.now() + CLOSE_OFFER_MS;
  for (;;) {
    if ((await readRedis(ctx.redis.publish(channel, text))) > 0) return true;
    if (performance.now() >= deadline) return false;
    await delay(CLOSE_RETRY_MS);
  }
}

/** SPEC §4: events are validated where they are written. Input passed the REST schemas, so this is a guard. */
export function checkedEvent<E extends BrokerEvent>(event: E): E {
  const problem = explainInvalidEvent(event);
  if (problem !== null) throw new BrokerError('INVALID_INPUT', problem);
  return event;
}
