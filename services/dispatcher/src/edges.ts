// Cleaning up after edges that died without saying so (SIGKILL, lost machine): their devices already count as
// offline (presence is filtered by live edges); this records ConnectionClosed for each of their connections and
// drops their lists, so projections and the connection list agree.
import { hostname } from 'node:os';
import { connectionClosedOf, type EventLog, type Presence, type PresenceBook } from '#eventlog';
import type { Keys } from '#events';
import type { Logger, RedisClient } from '#runtime';

export async function sweepDeadEdges(
  deps: {
    redis: RedisClient;
    keys: Keys;
    eventLog: EventLog;
    presence: PresenceBook;
    log: Logger;
    source: string;
  },
  nowMs: number,
): Promise<number> {
  const { redis, keys, eventLog, presence, log, source } = deps;
  let swept = 0;
  for (const edgeId of await presence.deadEdges(nowMs)) {
    // One sweeper per dead edge at a time; the lock expires by itself.
    const lock = await redis.set(keys.edgeSweepLock(edgeId), hostname(), 'PX', 10_000, 'NX');
    if (lock !== 'OK') continue;
    const connections = await redis.hvals(keys.edgeConnections(edgeId));
    for (const json of connections) {
      const entry = JSON.parse(json) as Presence;
      await eventLog.recordClose(
        connectionClosedOf({ ...entry, edge_id: edgeId }, 'edge_lost', source, nowMs),
      );
      await redis.hdel(keys.edgeConnections(edgeId), entry.conn_id);
      swept += 1;
    }
    await presence.forgetEdge(edgeId);
    log.info({ dead_edge: edgeId, connections: connections.length }, 'dead edge swept');
  }
  return swept;
}
