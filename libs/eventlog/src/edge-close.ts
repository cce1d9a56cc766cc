// Telling the edge that holds a connection to close it, over the edge's channel of the shop's shard. Used by the api
// (revoke, rotate, disconnect) and by `broker token --rotate`; it records nothing itself.
import { type EdgeCommand, encodeEdgeCommand, type Keys } from '#events';
import { delay, type RedisClient } from '#runtime';
import type { Presence } from './append';

/** How long a close is offered to an edge that is not subscribed (its subscriber reconnecting), and how often. */
const CLOSE_OFFER_MS = 500;
const CLOSE_RETRY_MS = 50;

/**
 * Asks the edge holding a connection to close it; false when no edge took the command within CLOSE_OFFER_MS.
 * Pub/sub is at most once, and SPUBLISH's receiver count is its only feedback: 0 means nobody heard it, so the
 * command is offered again for a moment rather than reported sent. A revoked device, or an old token, cannot log
 * in or notify again anyway (the registry is checked in the same atomic step), so a lost close only delays the
 * socket. Redis failures are thrown as they come.
 */
export async function closeOnEdge(
  redis: RedisClient,
  keys: Keys,
  connection: Pick<Presence, 'conn_id' | 'edge_id' | 'shop_id'>,
  code: number,
  reason: string,
): Promise<boolean> {
  const command: EdgeCommand = { kind: 'close', conn_id: connection.conn_id, code, reason };
  const channel = keys.edgeChannelOfShop(connection.shop_id, connection.edge_id);
  const text = encodeEdgeCommand(command);
  const deadline = performance.now() + CLOSE_OFFER_MS;
  for (;;) {
    if (Number(await redis.spublish(channel, text)) > 0) return true; // ioredis types the count unknown
    if (performance.now() >= deadline) return false;
    await delay(CLOSE_RETRY_MS);
  }
}
