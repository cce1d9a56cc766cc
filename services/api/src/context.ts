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
import type { Config, DeviceTokens, Logger, Pool, RedisClient } from '#runtime';

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

/**
 * Asks the edge holding a connection to close it. Pub/sub is at most once; a revoked device cannot log in or
 * notify again anyway (the registry is checked in the same atomic step), so a lost close only delays the socket.
 */
export async function closeConnection(
  ctx: ApiContext,
  connection: Pick<Presence, 'conn_id' | 'edge_id'>,
  code: number,
  reason: string,
): Promise<void> {
  const command: EdgeCommand = { kind: 'close', conn_id: connection.conn_id, code, reason };
  await readRedis(ctx.redis.publish(ctx.keys.edgeChannel(connection.edge_id), encodeEdgeCommand(command)));
}

/** SPEC §4: events are validated where they are written. Input passed the REST schemas, so this is a guard. */
export function checkedEvent<E extends BrokerEvent>(event: E): E {
  const problem = explainInvalidEvent(event);
  if (problem !== null) throw new BrokerError('INVALID_INPUT', problem);
  return event;
}
