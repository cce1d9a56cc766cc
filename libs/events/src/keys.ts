// Every Redis key and channel name, built in one place. No other code joins key strings.
// Cluster safety: all keys of one shop carry the hash tag of the shop's shard (`{s7}`), so the stream, the
// device registry, the inbox and the req_id records of a shop sit in one slot and one Lua script may touch
// them all. The shards' tags spread over the cluster's slots.
import { hash as digestOf } from 'node:crypto';

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

  /**
   * A notify's idempotency record as versions before the bucketed records kept it: one key per req_id (24 h TTL).
   * Only read now, until the last of them expires. The req_id is hashed: it is client input, any character.
   */
  dedup(shopId: string, senderId: string, reqId: string): string {
    return this.dedupOf(shopId, reqDigest(senderId, reqId));
  }

  /** The same key from the (sender, req_id) digest a record carries (reqRecordOf): one hash per notify. */
  dedupOf(shopId: string, digest: Buffer): string {
    return `${this.shop(shopId)}:req:${digest.toString('hex')}`;
  }

  /**
   * The stream time (ms) of the newest event of the shard archived in PostgreSQL, as the persister's retention last
   * saw it: the req_id records of older notifies may go (notify-12.lua), the archive answers for them.
   */
  archivedThrough(shard: number): string {
    return `${this.shardTag(shard)}:archived`;
  }

  /** The shard's req_id filters of even (0) or odd (1) days: scalable Bloom filters (notify-12.lua). */
  reqFilter(shard: number, parity: 0 | 1): string {
    return `${this.shardTag(shard)}:req-filter:${parity}`;
  }

  /**
   * The shop's exact req_id records: one hash of REQ_BUCKETS buckets, each record kept until its event is archived
   * and the window is over (see notify-12.lua for an entry's layout).
   */
  requests(shopId: string): string {
    return `${this.shop(shopId)}:req-window`;
  }

  /**
   * The req_id records as the versions before the window kept them (1,024 buckets, each record 24 h): only read
   * now, until the hash expires a day after its last write.
   */
  earlierRequests(shopId: string): string {
    return `${this.shop(shopId)}:reqs`;
  }

  /**
   * SPEC §10: requests handled lately (notify event id → JSON {by, at, status, id}), so that of two handles of one
   * request only the first is recorded, before the projections show it. Kept HANDLING_RECORD_MS.
   */
  handling(shopId: string): string {
    return `${this.shop(shopId)}:handling`;
  }

  /** The handling records by time (member: notify event id, score: ms), to let the old ones go. */
  handlingOrder(shopId: string): string {
    return `${this.shop(shopId)}:handling-order`;
  }

  /** Connections of the shop recorded closed lately (zset conn id → ms), so a close is appended once. */
  closedConnections(shopId: string): string {
    return `${this.shop(shopId)}:closed-conns`;
  }

  /** Registry of the shop's devices: client_id → JSON {type, token_id, registered_at, legacy?}. */
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

  /**
   * The sharded pub/sub channel (SSUBSCRIBE, SPUBLISH) on which an edge hears the deliveries and commands for its
   * connections of one shard's shops. An edge listens on one per shard. In the shard's slot, so a shard's script
   * publishes to it in its own step, and SPUBLISH's count is exact on a Redis Cluster too: there plain PUBLISH
   * counts only the subscribers of the node that took it, so "no edge received it" could not be told.
   */
  edgeChannel(shard: number, edgeId: string): string {
    return `${this.shardTag(shard)}:edge:${edgeId}`;
  }

  /** The channel of the edge for a shop's connections (its shard's). */
  edgeChannelOfShop(shopId: string, edgeId: string): string {
    return this.edgeChannel(this.shardOf(shopId), edgeId);
  }

  /** Every shard's channel of one edge: what it subscribes to. */
  edgeChannels(edgeId: string): string[] {
    return this.allShards().map((shard) => this.edgeChannel(shard, edgeId));
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

/**
 * How many buckets a shop's req_id records are spread over (a power of two, at most 65,536). Few: a bucket holds
 * only the minutes of the window, and a record is cut when its bucket is next written, so fewer buckets are written
 * more often and let their records go sooner.
 */
export const REQ_BUCKETS = 64;
/** The buckets of the records the versions before the window kept (keys.earlierRequests). */
const EARLIER_REQ_BUCKETS = 1024;

function reqDigest(senderId: string, reqId: string): Buffer {
  // Sender ids are identifiers (no newline), so the separator cannot be forged from the req_id side.
  // One-shot: a third of createHash().update().digest()'s price, and the same bytes (UTF-8 of the joined text).
  return digestOf('sha1', `${senderId}\n${reqId}`, 'buffer');
}

/**
 * Where a (sender, req_id) record sits among the shop's buckets (and among the earlier version's), the 8-byte tag
 * that finds it there and the 8-byte probe of the shard's filters: the bucket takes bits of the digest's first two
 * bytes, the tag the next 8 bytes, so two records are confused only when at least 70 bits of SHA-1 agree (within one
 * shop and one day: never, in practice); the probe is the 8 bytes after.
 */
export function reqRecordOf(
  senderId: string,
  reqId: string,
): { digest: Buffer; bucket: string; earlierBucket: string; tag: Buffer; probe: Buffer } {
  const digest = reqDigest(senderId, reqId);
  return {
    digest,
    bucket: String(digest.readUInt16BE(0) % REQ_BUCKETS),
    earlierBucket: String(digest.readUInt16BE(0) % EARLIER_REQ_BUCKETS),
    tag: digest.subarray(2, 10),
    probe: digest.subarray(10, 18), // the shard's req_id filters' two hashes (notify-12.lua)
  };
}

/** Pads a stream id so that lexical order is log order (13-digit ms, 10-digit sequence). */
export function paddedStreamId(streamId: string): string {
  const dash = streamId.indexOf('-');
  return `${streamId.slice(0, dash).padStart(13, '0')}-${streamId.slice(dash + 1).padStart(10, '0')}`;
}
