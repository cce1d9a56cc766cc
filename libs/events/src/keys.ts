// Every Redis key and channel name, built in one place. No other code joins key strings.
// Cluster safety: all keys of one shop carry the hash tag of the shop's shard (`{s7}`), so the stream, the
// device registry, the inbox and the req_id records of a shop sit in one slot and one Lua script may touch
// them all. The shards' tags spread over the cluster's slots.
import { createHash } from 'node:crypto';

/**
 * FNV-1a, then murmur3's fmix32 finaliser: a stable, fast string hash whose low bits depend on every bit of the
 * input (plain FNV-1a modulo a power of two put `shop-A` and `shop-Q` on one shard). The shard of a shop must
 * never change while its stream has events.
 */
function shardHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

export class Keys {
  constructor(
    readonly prefix: string,
    readonly shardCount: number,
  ) {}

  shardOf(shopId: string): number {
    return shardHash(shopId) % this.shardCount;
  }

  allShards(): number[] {
    return Array.from({ length: this.shardCount }, (_, i) => i);
  }

  private shardTag(shard: number): string {
    return `${this.prefix}:{s${shard}}`;
  }

  private shop(shopId: string): string {
    return `${this.shardTag(this.shardOf(shopId))}:shop:${shopId}`;
  }

  /** The shard's event log. */
  stream(shard: number): string {
    return `${this.shardTag(shard)}:log`;
  }

  streamOfShop(shopId: string): string {
    return this.stream(this.shardOf(shopId));
  }

  /** Entries that failed validation or projection, with the reason and the original fields. */
  deadLetter(shard: number): string {
    return `${this.shardTag(shard)}:dead`;
  }

  /** Lease of one shard for one consumer group: one consumer reads a shard at a time, so events stay in order. */
  lease(group: string, shard: number): string {
    return `${this.shardTag(shard)}:lease:${group}`;
  }

  /** A notify's idempotency record (24 h). The req_id is hashed: it is client input and may hold any character. */
  dedup(shopId: string, senderId: string, reqId: string): string {
    const digest = createHash('sha1').update(senderId).update('\n').update(reqId).digest('hex');
    return `${this.shop(shopId)}:req:${digest}`;
  }

  /** Registry of the shop's devices: client_id → JSON {type, token_id, registered_at}. */
  devices(shopId: string): string {
    return `${this.shop(shopId)}:devices`;
  }

  /** Undelivered messages of the shop: message id → JSON payload. */
  inbox(shopId: string): string {
    return `${this.shop(shopId)}:inbox`;
  }

  /** The inbox's order: members `<client_id>|<stream id, padded>|<message id>`, score 0, ranged by lex. */
  inboxOrder(shopId: string): string {
    return `${this.shop(shopId)}:inbox-order`;
  }

  /** Push attempts of undelivered messages: message id → count. */
  attempts(shopId: string): string {
    return `${this.shop(shopId)}:attempts`;
  }

  /** Who is online: client_id → JSON {conn_id, edge_id, type, connected_at, remote_addr}. */
  presence(shopId: string): string {
    return `${this.shop(shopId)}:presence`;
  }

  /** Shops known to the broker (for the overview). */
  shops(): string {
    return `${this.prefix}:shops`;
  }

  /** Live edges: edge id → last heartbeat (ms). An edge missing its heartbeat is dead and its sockets gone. */
  edges(): string {
    return `${this.prefix}:edges`;
  }

  /** One edge's connections: conn_id → JSON connection. */
  edgeConnections(edgeId: string): string {
    return `${this.prefix}:edge:{${edgeId}}:conns`;
  }

  /** Held by the one dispatcher cleaning up after a dead edge. */
  edgeSweepLock(edgeId: string): string {
    return `${this.prefix}:edge:{${edgeId}}:sweep`;
  }

  /** Pub/sub channel an edge listens on for deliveries and control commands. */
  edgeChannel(edgeId: string): string {
    return `${this.prefix}:edge-channel:${edgeId}`;
  }

  /**
   * Pushes an edge received for a connection it no longer holds (list of JSON {shop, id, attempt}); the dispatchers
   * drain it into the retry queue.
   */
  bounced(): string {
    return `${this.prefix}:bounced`;
  }

  /** Live members of a consumer group: consumer name → last heartbeat (ms). */
  members(group: string): string {
    return `${this.prefix}:members:${group}`;
  }

  /** A back-office console session (by the digest of its id): JSON {key, created_ms}, with an idle TTL. */
  consoleSession(idDigest: string): string {
    return `${this.prefix}:console-session:${idDigest}`;
  }

  /** BullMQ's prefix: one hash tag, so each queue's keys share a slot (BullMQ's Redis Cluster pattern). */
  bullPrefix(): string {
    return `${this.prefix}:{retries}`;
  }
}

/** Pads a stream id so that lexical order is log order (13-digit ms, 10-digit sequence). */
export function paddedStreamId(streamId: string): string {
  const dash = streamId.indexOf('-');
  return `${streamId.slice(0, dash).padStart(13, '0')}-${streamId.slice(dash + 1).padStart(10, '0')}`;
}
