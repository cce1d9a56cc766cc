// Reading the log in a consumer group, in order. Each shard is leased to one consumer of the group at a time, so
// a shop's events are handled in log order even with several consumers running; a consumer that dies loses its
// leases after CONSUMER_LEASE_MS and the next owner claims its pending entries (XAUTOCLAIM) before reading on.
// An entry is acknowledged (XACK) only after the handler has finished with it.
import { type BrokerEvent, decodeEntry, type EventType, type Keys } from '#events';
import {
  backoffMs,
  type Config,
  counter,
  delay,
  duplicateRedis,
  gauge,
  type Logger,
  type RedisClient,
} from '#runtime';
import { parkDeadLetter } from './dead-letter';
import { isTransientFailure } from './failures';

export interface ConsumedEntry {
  streamId: string;
  event: BrokerEvent;
}

export interface ShardConsumerOptions {
  redis: RedisClient;
  redisConfig: Config['redis'];
  keys: Keys;
  log: Logger;
  group: string;
  consumer: string;
  batch: number;
  leaseMs: number;
  /**
   * The event types this group handles; entries of other types (told by the stream entry's `t` field) are
   * acknowledged without being parsed or validated. Default: every type, each one validated.
   */
  types?: readonly EventType[];
  /** Handles a batch in log order; resolves when done with it. Throwing retries it (transient) or isolates it. */
  handle(shard: number, entries: ConsumedEntry[]): Promise<void>;
}

const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const BLOCK_MS = 2000;
const ATTEMPTS_BEFORE_ISOLATION = 3;

const handled = counter('broker_consumer_events_total', 'Events handled by a consumer group', ['group']);
const ownedShards = gauge('broker_consumer_owned_shards', 'Shards this process reads', ['group']);

interface ShardLoop {
  abort: AbortController;
  connection: RedisClient;
  done: Promise<void>;
}

export class ShardConsumer {
  private readonly loops = new Map<number, ShardLoop>();
  /** Shards given back whose last batch is still finishing. */
  private readonly releasing = new Map<number, Promise<void>>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private isStopping = false;
  private leaseRound: Promise<void> = Promise.resolve();

  private readonly types: ReadonlySet<string> | undefined;

  constructor(private readonly options: ShardConsumerOptions) {
    this.types = options.types && new Set(options.types);
  }

  /** Starts taking leases; resolves after the first round. */
  async start(): Promise<void> {
    await this.balanceLeases();
    const period = Math.max(50, Math.floor(this.options.leaseMs / 3));
    this.leaseTimer = setInterval(() => {
      this.leaseRound = this.leaseRound.then(() => this.balanceLeases());
    }, period);
  }

  shards(): number[] {
    return [...this.loops.keys()].sort((a, b) => a - b);
  }

  async stop(): Promise<void> {
    this.isStopping = true;
    clearInterval(this.leaseTimer);
    await this.leaseRound;
    for (const shard of [...this.loops.keys()]) this.giveBack(shard);
    await Promise.all([...this.releasing.values()]);
    await this.options.redis
      .zrem(this.options.keys.members(this.options.group), this.options.consumer)
      .catch((err) => {
        this.options.log.warn({ reason: (err as Error).message }, 'could not leave the consumer group');
      });
  }

  /**
   * One round: renew every lease this consumer holds (concurrently, first: a late renewal loses the shard), then
   * heartbeat, count live members and take or give back shards toward a fair share. Nothing here waits for a
   * shard's batch: a shard given back finishes its batch in the background, its lease still renewed meanwhile.
   */
  private async balanceLeases(): Promise<void> {
    if (this.isStopping) return;
    const { redis, keys, group, consumer, leaseMs, log } = this.options;
    try {
      const held = [...this.loops.keys(), ...this.releasing.keys()];
      const renewed = await Promise.all(
        held.map((shard) => redis.eval(RENEW_SCRIPT, 1, keys.lease(group, shard), consumer, leaseMs)),
      );
      held.forEach((shard, i) => {
        if (renewed[i] === 1 || !this.loops.has(shard)) return;
        log.warn({ shard, group }, 'lease lost; another consumer owns the shard now');
        this.giveBack(shard);
      });

      const now = Date.now();
      const membersKey = keys.members(group);
      const [, , live] = await Promise.all([
        redis.zadd(membersKey, now, consumer),
        redis.zremrangebyscore(membersKey, '-inf', now - leaseMs),
        redis.zcard(membersKey),
      ]);
      const target = Math.ceil(keys.shardCount / Math.max(1, live));
      while (this.loops.size > target) this.giveBack(Math.max(...this.loops.keys()));
      if (this.loops.size < target) {
        const free = shuffled(keys.allShards().filter((s) => !this.loops.has(s) && !this.releasing.has(s)));
        for (const shard of free) {
          if (this.loops.size >= target || this.isStopping) break;
          const taken = await redis.set(keys.lease(group, shard), consumer, 'PX', leaseMs, 'NX');
          if (taken === 'OK') this.run(shard);
        }
      }
      ownedShards.set({ group }, this.loops.size);
    } catch (err) {
      if (!isTransientFailure(err)) log.error({ err, group }, 'lease round failed');
    }
  }

  private run(shard: number): void {
    const { redis, redisConfig, log, group } = this.options;
    const abort = new AbortController();
    const connection = duplicateRedis(redis, log, redisConfig, `${group}-s${shard}`);
    const done = this.readShard(shard, connection, abort.signal).catch((err) => {
      if (!abort.signal.aborted) log.error({ err, shard, group }, 'shard reader stopped');
    });
    this.loops.set(shard, { abort, connection, done });
    log.debug({ shard, group }, 'shard leased');
  }

  /** Stops reading a shard; the lease is released once its in-flight batch is done (see release()). */
  private giveBack(shard: number): void {
    if (!this.loops.has(shard) || this.releasing.has(shard)) return;
    this.releasing.set(
      shard,
      this.release(shard).finally(() => this.releasing.delete(shard)),
    );
  }

  private async release(shard: number): Promise<void> {
    const loop = this.loops.get(shard);
    if (!loop) return;
    this.loops.delete(shard);
    loop.abort.abort();
    loop.connection.disconnect(); // unblocks a waiting XREADGROUP; unacked entries stay pending for the next owner
    await loop.done;
    const { redis, keys, group, consumer } = this.options;
    await redis.eval(RELEASE_SCRIPT, 1, keys.lease(group, shard), consumer).catch(() => 0); // expires anyway
  }

  private async readShard(shard: number, connection: RedisClient, signal: AbortSignal): Promise<void> {
    const { keys, group, consumer, batch, log } = this.options;
    const stream = keys.stream(shard);
    let cursor: string | null = null; // null: (re)join; '0': our own pending entries, in order; '>': new ones
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (cursor === null) {
          await ensureGroup(connection, stream, group);
          await claimPending(connection, stream, group, consumer, batch);
          cursor = '0';
        }
        const args: Array<string | number> = ['GROUP', group, consumer, 'COUNT', batch];
        if (cursor === '>') args.push('BLOCK', BLOCK_MS);
        args.push('STREAMS', stream, cursor);
        // ioredis types xreadgroup by overloads that a spread cannot pick; the reply shape is fixed by Redis.
        const reply = (await (connection.xreadgroup as (...a: unknown[]) => Promise<unknown>)(
          ...args,
        )) as Array<[string, Array<[string, string[] | null]>]> | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) {
          cursor = '>';
          continue;
        }
        await this.consume(shard, entries, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (!isTransientFailure(err)) log.error({ err, shard, group }, 'shard read failed');
        cursor = null; // whatever was read but not acknowledged is still pending: start over from it
        await delay(backoffMs(Math.min(failures++, 6), 100, 5000), signal);
      }
    }
  }

  /** Validates, handles and acknowledges one batch. Invalid entries go to the dead-letter stream. */
  private async consume(
    shard: number,
    raw: Array<[string, string[] | null]>,
    signal: AbortSignal,
  ): Promise<void> {
    const { redis, keys, group, log } = this.options;
    const valid: ConsumedEntry[] = [];
    const fieldsById = new Map<string, string[]>();
    for (const [streamId, fields] of raw) {
      if (fields === null) continue; // trimmed while pending: nothing left to handle
      if (this.types && !this.isWanted(fields)) continue;
      const decoded = decodeEntry(fields);
      if (decoded.ok) {
        valid.push({ streamId, event: decoded.event });
        fieldsById.set(streamId, fields);
      } else {
        log.warn(
          { shard, stream_id: streamId, reason: decoded.reason, group },
          'invalid event dead-lettered',
        );
        await parkDeadLetter(redis, keys, {
          shard,
          group,
          streamId,
          fields,
          reason: decoded.reason,
          kind: 'invalid',
        });
      }
    }
    if (valid.length > 0) await this.handleWithRetries(shard, valid, fieldsById, signal);
    if (signal.aborted) return;
    await redis.xack(keys.stream(shard), group, ...raw.map(([id]) => id));
    handled.inc({ group }, valid.length);
  }

  /** An entry without a `t` field is decoded, so that an invalid one is dead-lettered here too. */
  private isWanted(fields: readonly string[]): boolean {
    for (let i = 0; i + 1 < fields.length; i += 2)
      if (fields[i] === 't') return this.types!.has(fields[i + 1]!);
    return true;
  }

  private async handleWithRetries(
    shard: number,
    entries: ConsumedEntry[],
    fieldsById: Map<string, string[]>,
    signal: AbortSignal,
  ): Promise<void> {
    const { log, group } = this.options;
    let failures = 0;
    let isWaiting = false;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await this.options.handle(shard, entries);
        if (isWaiting) log.info({ shard, group }, 'dependency back; batch handled');
        return;
      } catch (err) {
        if (isTransientFailure(err)) {
          if (!isWaiting)
            log.warn({ shard, group, reason: (err as Error).message }, 'dependency unavailable; retrying');
          isWaiting = true;
          await delay(backoffMs(Math.min(attempt, 6), 100, 5000), signal);
          continue;
        }
        failures++;
        log.warn({ shard, group, reason: (err as Error).message, failures }, 'batch failed');
        if (failures >= ATTEMPTS_BEFORE_ISOLATION)
          return this.isolatePoison(shard, entries, fieldsById, signal);
        await delay(backoffMs(failures, 50, 1000), signal);
      }
    }
  }

  /** Handles a failing batch one event at a time; an event that keeps failing is dead-lettered, the rest go on. */
  private async isolatePoison(
    shard: number,
    entries: ConsumedEntry[],
    fieldsById: Map<string, string[]>,
    signal: AbortSignal,
  ): Promise<void> {
    const { redis, keys, group, log } = this.options;
    for (const entry of entries) {
      for (let attempt = 1; !signal.aborted; attempt++) {
        try {
          await this.options.handle(shard, [entry]);
          break;
        } catch (err) {
          if (isTransientFailure(err)) {
            await delay(backoffMs(Math.min(attempt, 6), 100, 5000), signal);
            continue;
          }
          if (attempt < ATTEMPTS_BEFORE_ISOLATION) continue;
          const reason = `handler failed: ${(err as Error).message}`;
          log.warn({ shard, group, event_id: entry.event.id, reason }, 'poison event dead-lettered');
          const fields = fieldsById.get(entry.streamId) ?? [];
          await parkDeadLetter(redis, keys, {
            shard,
            group,
            streamId: entry.streamId,
            fields,
            reason,
            kind: 'poison',
          });
          break;
        }
      }
    }
  }

  /** Resolves once every event appended so far has been handled and acknowledged by this group. */
  async whenCaughtUp(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.isCaughtUp())) {
      if (Date.now() > deadline) throw new Error(`${this.options.group} did not catch up in ${timeoutMs} ms`);
      await delay(20);
    }
  }

  private async isCaughtUp(): Promise<boolean> {
    const { redis, keys, group } = this.options;
    for (const shard of keys.allShards()) {
      const lag = await groupLag(redis, keys.stream(shard), group);
      if (lag.pending > 0 || lag.unread > 0) return false;
    }
    return true;
  }
}

export interface GroupLag {
  pending: number;
  unread: number;
  /** Stream id of the oldest event the group has not finished, or null. */
  oldestUnfinished: string | null;
}

/** How far a group is behind on one stream. */
export async function groupLag(redis: RedisClient, stream: string, group: string): Promise<GroupLag> {
  const length = await redis.xlen(stream);
  if (length === 0) return { pending: 0, unread: 0, oldestUnfinished: null };
  let groups: unknown[];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
  } catch {
    return { pending: 0, unread: length, oldestUnfinished: '0-0' }; // the stream vanished meanwhile
  }
  const info = groups.map(toRecord).find((g) => g.name === group);
  if (!info) {
    const first = await redis.xrange(stream, '-', '+', 'COUNT', 1);
    return { pending: 0, unread: length, oldestUnfinished: first[0]?.[0] ?? null };
  }
  const pending = Number(info.pending ?? 0);
  const lastDelivered = String(info['last-delivered-id'] ?? '0-0');
  const next = await redis.xrange(stream, `(${lastDelivered}`, '+', 'COUNT', 1);
  const unread = next.length === 0 ? 0 : Math.max(1, Number(info.lag ?? 1));
  let oldest: string | null = next[0]?.[0] ?? null;
  if (pending > 0) {
    const summary = (await redis.xpending(stream, group)) as [number, string | null, string | null, unknown];
    if (summary[1]) oldest = summary[1];
  }
  return { pending, unread, oldestUnfinished: oldest };
}

function toRecord(flat: unknown): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  const list = flat as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) record[String(list[i])] = list[i + 1];
  return record;
}

async function ensureGroup(redis: RedisClient, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!(err as Error).message.includes('BUSYGROUP')) throw err;
  }
}

/** Moves every pending entry of the group's other (dead) consumers to this one; the lease says they are gone. */
async function claimPending(
  redis: RedisClient,
  stream: string,
  group: string,
  consumer: string,
  count: number,
) {
  let cursor = '0-0';
  do {
    const reply = (await redis.xautoclaim(stream, group, consumer, 0, cursor, 'COUNT', count, 'JUSTID')) as [
      string,
      string[],
    ];
    cursor = reply[0];
  } while (cursor !== '0-0');
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}
