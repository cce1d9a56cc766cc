// Who is online, readable by every service: each device's presence entry (written atomically at login) and the
// edges' heartbeats. An entry whose edge stopped beating is not online: a SIGKILLed edge's devices drop out
// within EDGE_HEARTBEAT_TTL_MS.
import { createEvent, type Keys } from '#events';
import type { RedisClient } from '#runtime';
import type { Presence } from './append';

export const EDGE_HEARTBEAT_MS = 1000;
export const EDGE_HEARTBEAT_TTL_MS = 4000;
/**
 * An edge silent this long is swept: its connections are recorded closed and, should it come back, it closes
 * them (1012) so the devices log in again. Longer than the TTL on purpose: an edge stalled for a few seconds on
 * a starved machine is only skipped for routing (retries cover it), not torn down with all its sockets.
 */
export const EDGE_SWEEP_AFTER_MS = 8000;

export class PresenceBook {
  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
  ) {}

  /**
   * An edge says it is alive; call every EDGE_HEARTBEAT_MS. True when the edge was not listed: its first beat,
   * or it was swept as dead meanwhile (its connections were recorded closed).
   */
  async beat(edgeId: string, nowMs: number): Promise<boolean> {
    return (await this.redis.zadd(this.keys.edges(), nowMs, edgeId)) === 1;
  }

  async forgetEdge(edgeId: string): Promise<void> {
    await this.redis.zrem(this.keys.edges(), edgeId);
  }

  async liveEdges(nowMs: number): Promise<Set<string>> {
    const ids = await this.redis.zrangebyscore(this.keys.edges(), nowMs - EDGE_HEARTBEAT_TTL_MS, '+inf');
    return new Set(ids);
  }

  /** Edges that stopped beating (crashed) EDGE_SWEEP_AFTER_MS ago and have not been cleaned up. */
  async deadEdges(nowMs: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.edges(), '-inf', `(${nowMs - EDGE_SWEEP_AFTER_MS}`);
  }

  /**
   * Where each device of several shops is connected, in one round trip: shop → client_id → presence, as listed,
   * whether or not its edge still beats. The dispatcher's hot path: it publishes to the listed edge, and a push
   * that no edge receives (SPUBLISH answers 0: the edge is gone) is retried through BullMQ. An edge stalled for a
   * few seconds still gets its pushes, which Redis keeps in the subscription's buffer meanwhile.
   */
  async listedIn(shopIds: readonly string[]): Promise<Map<string, Map<string, Presence>>> {
    const hashes = await Promise.all(shopIds.map((shopId) => this.redis.hgetall(this.keys.presence(shopId))));
    const byShop = new Map<string, Map<string, Presence>>();
    shopIds.forEach((shopId, i) => {
      byShop.set(shopId, onLiveEdges(hashes[i]!, null));
    });
    return byShop;
  }

  /** The shop's online devices: client_id → presence, only those on live edges. */
  async online(shopId: string, liveEdges: Set<string>): Promise<Map<string, Presence>> {
    return onLiveEdges(await this.redis.hgetall(this.keys.presence(shopId)), liveEdges);
  }

  /** Every live connection of every live edge (an edge keeps its own connection list). */
  async connections(liveEdges: Set<string>): Promise<Presence[]> {
    const lists = await Promise.all(
      [...liveEdges].map((edgeId) => this.redis.hvals(this.keys.edgeConnections(edgeId))),
    );
    return lists.flat().map((json) => JSON.parse(json) as Presence);
  }
}

/** The listed presences, only those on `liveEdges` unless it is null. */
function onLiveEdges(entries: Record<string, string>, liveEdges: Set<string> | null): Map<string, Presence> {
  const online = new Map<string, Presence>();
  for (const [clientId, json] of Object.entries(entries)) {
    const presence = JSON.parse(json) as Presence;
    if (liveEdges === null || liveEdges.has(presence.edge_id)) online.set(clientId, presence);
  }
  return online;
}

/** The ConnectionClosed of a listed connection whose socket is gone (its edge died, or restarted). */
export function connectionClosedOf(entry: Presence, reason: string, source: string, nowMs: number) {
  return createEvent({
    type: 'ConnectionClosed',
    shopId: entry.shop_id,
    source,
    nowMs,
    data: { client_id: entry.client_id, conn_id: entry.conn_id, edge_id: entry.edge_id, reason },
  });
}
