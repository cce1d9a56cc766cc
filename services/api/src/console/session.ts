// Console sessions: an API key, checked in constant time, is exchanged for an opaque random session id, and the
// page keeps only that id, in an HttpOnly cookie. Redis holds the session, so every api instance behind the load
// balancer knows it and a sign-out on one ends it on all. It is stored under the digest of its id, so a Redis
// dump hands out no live session.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Keys } from '#events';
import type { RedisClient } from '#runtime';
import { readRedis } from '../context';

/** A session unused this long ends. An open console polls every second, so it lives while the page is open. */
export const SESSION_IDLE_S = 30 * 60;
/** A session ends this long after its sign-in however busy, so a forgotten tab does not stay signed in. */
export const SESSION_MAX_AGE_S = 12 * 60 * 60;

/** 32 random bytes, base64url: anything else is not an id this console handed out, and costs no Redis read. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

interface StoredSession {
  /** Fingerprint of the API key signed in with: the session ends when that key is no longer configured. */
  key: string;
  created_ms: number;
}

export class ConsoleSessions {
  private readonly keyDigests: Buffer[];
  private readonly fingerprints: Set<string>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    apiKeys: readonly string[],
    private readonly nowMs: () => number,
  ) {
    this.keyDigests = apiKeys.map(sha256);
    this.fingerprints = new Set(this.keyDigests.map(fingerprintOf));
  }

  /** A new session id when `givenKey` is a configured API key, else null. */
  async signIn(givenKey: string): Promise<string | null> {
    const digest = this.matchingKey(givenKey);
    if (digest === null) return null;
    const id = randomBytes(32).toString('base64url');
    const stored: StoredSession = { key: fingerprintOf(digest), created_ms: this.nowMs() };
    await readRedis(this.redis.set(this.storeKey(id), JSON.stringify(stored), 'EX', SESSION_IDLE_S));
    return id;
  }

  /** Whether the id names a live session; using it restarts its idle time. */
  async isLive(id: string | undefined): Promise<boolean> {
    if (id === undefined || !SESSION_ID.test(id)) return false;
    const key = this.storeKey(id);
    const json = await readRedis(this.redis.getex(key, 'EX', SESSION_IDLE_S));
    if (json === null) return false;
    const stored = JSON.parse(json) as StoredSession; // written by signIn above
    const isYoungEnough = this.nowMs() - stored.created_ms < SESSION_MAX_AGE_S * 1000;
    if (isYoungEnough && this.fingerprints.has(stored.key)) return true;
    await readRedis(this.redis.del(key));
    return false;
  }

  async signOut(id: string | undefined): Promise<void> {
    if (id === undefined || !SESSION_ID.test(id)) return;
    await readRedis(this.redis.del(this.storeKey(id)));
  }

  /**
   * The digest of the configured key equal to `given`, compared in constant time: both sides are hashed to one
   * length first (timingSafeEqual needs equal lengths) and every key is compared, so neither the length nor the
   * position of a key leaks.
   */
  private matchingKey(given: string): Buffer | null {
    const digest = sha256(given);
    let found: Buffer | null = null;
    for (const known of this.keyDigests) {
      if (timingSafeEqual(known, digest)) found = known;
    }
    return found;
  }

  private storeKey(id: string): string {
    return this.keys.consoleSession(sha256(id).toString('hex'));
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** 64 bits of the key's digest: tells configured keys apart without storing anything that could stand for one. */
function fingerprintOf(digest: Buffer): string {
  return digest.subarray(0, 8).toString('hex');
}
