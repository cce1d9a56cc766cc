// What every route works with: the clients, the event log, the presence book and the clock, built once by
// start(). Also the two Redis moves several routes share: reading live state and telling an edge to close.

import { closeOnEdge, type EventLog, isRedisUnavailable, type Presence, type PresenceBook } from '#eventlog';
import { BrokerError, type BrokerEvent, explainInvalidEvent, type Keys } from '#events';
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

/** Asks the edge holding a connection to close it (closeOnEdge); false when no edge took the command. */
export function closeConnection(
  ctx: ApiContext,
  connection: Pick<Presence, 'conn_id' | 'edge_id' | 'shop_id'>,
  code: number,
  reason: string,
): Promise<boolean> {
  return readRedis(closeOnEdge(ctx.redis, ctx.keys, connection, code, reason));
}

/** SPEC §4: events are validated where they are written. Input passed the REST schemas, so this is a guard. */
export function checkedEvent<E extends BrokerEvent>(event: E): E {
  const problem = explainInvalidEvent(event);
  if (problem !== null) throw new BrokerError('INVALID_INPUT', problem);
  return event;
}
