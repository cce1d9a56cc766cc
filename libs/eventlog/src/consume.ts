// Reading the log in a consumer group, in order. Each shard is leased to one consumer of the group at a time, so
// a shop's events are handled in log order even with several consumers running; a consumer that dies loses its
// leases after CONSUMER_LEASE_MS and the next owner claims its pending entries (XAUTOCLAIM) before reading on.
// An entry is acknowledged (XACK) only after the handler has finished with it.
// A consumer reads all its shards in one round trip: one XREADGROUP over their streams, on one blocking
// connection, with the XACKs of the previous round in front of it in the same pipeline (one socket write per
// round, whatever the number of shards: socket writes are what a notify's CPU went to). On a Redis Cluster every
// stream sits in a slot of its own and one command cannot name two, so there each shard has a reader of its own.
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
  /**
   * A sub's notify whose append made the first pushes (notify-12.lua, the entry's `u` field): the recipients whose
   * push reached no edge. Absent when the append did not route the event (the dispatcher routes it).
   */
  unreached?: string[];
}

/** The `u` field of a stream entry, if it has one (see ConsumedEntry.unreached). */
function unreachedOf(fields: readonly string[]): string[] | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'u') return fields[i + 1] === '' ? [] : fields[i + 1]!.split(' ');
  }
  return undefined;
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
  /**
   * The least time between the starts of two reads (ms, default 0): what arrives meanwhile is read in one round.
   * For a group that skips most of what it reads (the dispatcher), so that it is not woken by every event. A round
   * that filled a batch is followed at once (a backlog is never slowed).
   */
  readIntervalMs?: number;
  /** Handles a batch in log order; resolves when done with it. Throwing retries it (transient) or isolates it. */
  handle(shard: number, entries: ConsumedEntry[]): Promise<void>;
}

const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const BLOCK_MS = 2000;
const ATTEMPTS_BEFORE_ISOLATION = 3;

const handled = counter('broker_consumer_events_total', 'Events handled by a consumer group', ['group']);
const ownedShards = gauge('broker_consumer_owned_shards', 'Shards this process reads', ['group']);

/** A shard this consumer holds the lease of. */
interface OwnedShard {
  shard: number;
  stream: string;
  /**
   * null: (re)join (create the group, claim the dead consumers' pending entries); '0': our own pending entries, in
   * order; '>': new ones.
   */
  cursor: string | null;
  /** Aborted when the shard is given back: a batch waiting on a dependency stops waiting. */
  abort: AbortController;
  reader: Reader;
}

export class ShardConsumer {
  private readonly loops = new Map<number, OwnedShard>();
  /** The reader of every shard on a single Redis; null on a Cluster (a reader per shard) or before the first. */
  private sharedReader: Reader | null = null;
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
    const { keys, log, group, redisConfig } = this.options;
    const isCluster = redisConfig.clusterNodes.length > 0;
    if (!isCluster && this.sharedReader === null) this.sharedReader = new Reader(this, this.options, 'all');
    const reader = isCluster ? new Reader(this, this.options, shard) : this.sharedReader!;
    const owned: OwnedShard = {
      shard,
      stream: keys.stream(shard),
      cursor: null,
      abort: new AbortController(),
      reader,
    };
    this.loops.set(shard, owned);
    reader.add(owned);
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
    const owned = this.loops.get(shard);
    if (!owned) return;
    this.loops.delete(shard);
    owned.abort.abort();
    await owned.reader.remove(owned); // what it read and did not acknowledge stays pending for the next owner
    // Releases run concurrently (stop() gives every shard back at once): the shared reader is stopped by the one
    // that finds it still shared and no shard left, not once per shard.
    if (!owned.reader.isShared) await owned.reader.stop();
    else if (this.loops.size === 0 && this.sharedReader === owned.reader) {
      this.sharedReader = null;
      await owned.reader.stop();
    }
    const { redis, keys, group, consumer } = this.options;
    await redis.eval(RELEASE_SCRIPT, 1, keys.lease(group, shard), consumer).catch(() => 0); // expires anyway
  }

  /**
   * Validates and handles one batch; invalid entries go to the dead-letter stream. Resolves true when the batch may
   * be acknowledged (its reader sends the XACK with its next read), false when the shard was given back meanwhile.
   */
  async consume(shard: number, raw: Array<[string, string[] | null]>, signal: AbortSignal): Promise<boolean> {
    const { redis, keys, group, log } = this.options;
    const valid: ConsumedEntry[] = [];
    const fieldsById = new Map<string, string[]>();
    for (const [streamId, fields] of raw) {
      if (fields === null) continue; // trimmed while pending: nothing left to handle
      if (this.types && !this.isWanted(fields)) continue;
      const decoded = decodeEntry(fields);
      if (decoded.ok) {
        const unreached = unreachedOf(fields);
        valid.push(
          unreached ? { streamId, event: decoded.event, unreached } : { streamId, event: decoded.event },
        );
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
    if (signal.aborted) return false;
    handled.inc({ group }, valid.length);
    return true;
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

/**
 * Reads a set of shards on one blocking connection: one XREADGROUP over all their streams per round, preceded in
 * the same pipeline by the XACKs of the previous round. The batches of one round are handled concurrently (each
 * shard's in order), so a handler that group-commits (the dispatcher, the persister) takes them together.
 */
class Reader {
  private readonly shards = new Map<number, OwnedShard>();
  private readonly connection: RedisClient;
  private readonly abort = new AbortController();
  /** XACKs owed from the last round: stream → ids. */
  private readonly acks = new Map<string, string[]>();
  /** The round under way (resolved when idle). */
  private round: Promise<void> = Promise.resolve();
  private readonly done: Promise<void>;
  private wake: (() => void) | undefined;
  /** CLIENT ID of the blocking connection, so that a change of shards ends a blocked read (CLIENT UNBLOCK). */
  private clientId: number | null = null;
  /** The last round read a whole batch of some shard, or a shard is still reading its pending history: read again
   * at once. */
  private isBehind = false;
  private stopped: Promise<void> | undefined;
  /** Reads every shard its consumer holds (else one shard for life, on a Cluster). */
  readonly isShared: boolean;

  constructor(
    private readonly consumer: ShardConsumer,
    private readonly options: ShardConsumerOptions,
    name: number | 'all',
  ) {
    this.isShared = name === 'all';
    const { redis, log, redisConfig, group } = options;
    const connectionName = this.isShared ? `${group}-reader` : `${group}-s${name}`;
    this.connection = duplicateRedis(redis, log, redisConfig, connectionName);
    // On a Cluster a reader has one shard for life: it is stopped, never interrupted.
    if (this.isShared) {
      this.connection.on('ready', () => {
        this.clientId = null;
        (this.connection.client('ID') as Promise<number>).then(
          (id) => {
            this.clientId = id;
          },
          () => {},
        );
      });
    }
    this.done = this.loop().catch((err) => {
      if (!this.abort.signal.aborted) log.error({ err, group }, 'shard reader stopped');
    });
  }

  add(owned: OwnedShard): void {
    this.shards.set(owned.shard, owned);
    this.interrupt();
  }

  /** Stops reading the shard: waits for the round under way, then acknowledges what it handled of the shard. */
  async remove(owned: OwnedShard): Promise<void> {
    this.shards.delete(owned.shard);
    this.interrupt();
    await this.round;
    const ids = this.acks.get(owned.stream);
    this.acks.delete(owned.stream);
    if (ids && ids.length > 0)
      await this.options.redis.xack(owned.stream, this.options.group, ...ids).catch(() => 0); // stays pending
  }

  /** Stops reading and closes the connection; a second call waits for the first. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      this.wake?.();
      this.connection.disconnect(); // ends a blocked XREADGROUP
      await this.done;
    })();
    return this.stopped;
  }

  /** Ends a blocked read, so that the next round reads the new set of shards. */
  private interrupt(): void {
    this.wake?.();
    if (this.clientId !== null) this.options.redis.client('UNBLOCK', this.clientId).catch(() => 0); // it ends within BLOCK_MS anyway
  }

  private async loop(): Promise<void> {
    const { log, group, readIntervalMs = 0 } = this.options;
    const signal = this.abort.signal;
    let failures = 0;
    let lastRead = 0;
    while (!signal.aborted) {
      if (this.shards.size === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      const rest = lastRead + readIntervalMs - Date.now();
      if (rest > 0 && !this.isBehind) await delay(rest, signal);
      lastRead = Date.now();
      const round = this.readOnce();
      this.round = round.then(
        () => {},
        () => {},
      );
      try {
        await round;
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (!isTransientFailure(err)) log.error({ err, group }, 'shard read failed');
        // Whatever was read and not acknowledged is still pending: every shard starts over from it.
        for (const owned of this.shards.values()) owned.cursor = null;
        this.acks.clear();
        await delay(backoffMs(Math.min(failures++, 6), 100, 5000), signal);
      }
    }
  }

  private async readOnce(): Promise<void> {
    const { group, consumer, batch, log } = this.options;
    const connection = this.connection;
    const shards = [...this.shards.values()];
    for (const owned of shards) {
      if (owned.cursor !== null) continue;
      await ensureGroup(connection, owned.stream, group);
      await claimPending(connection, owned.stream, group, consumer, batch);
      owned.cursor = '0';
    }
    const pipeline = connection.pipeline();
    for (const [stream, ids] of this.acks) pipeline.xack(stream, group, ...ids);
    this.acks.clear();
    const args: Array<string | number> = ['GROUP', group, consumer, 'COUNT', batch];
    // Pending history is served at once; BLOCK only while every shard reads new entries.
    if (shards.every((owned) => owned.cursor === '>')) args.push('BLOCK', BLOCK_MS);
    args.push('STREAMS', ...shards.map((owned) => owned.stream), ...shards.map((owned) => owned.cursor!));
    // ioredis types xreadgroup by overloads that a spread cannot pick; the reply shape is fixed by Redis.
    (pipeline.xreadgroup as (...a: unknown[]) => unknown)(...args);
    const results = (await pipeline.exec()) ?? [];
    const [readError, reply] = results[results.length - 1] ?? [new Error('no reply to XREADGROUP'), null];
    if (readError) throw readError;
    const byStream = new Map<string, Array<[string, string[] | null]>>();
    // A round of pending history is followed at once, as is one that filled a batch.
    let isBehind = shards.some((owned) => owned.cursor !== '>');
    for (const [stream, entries] of (reply as Array<[string, Array<[string, string[] | null]>]> | null) ??
      []) {
      byStream.set(stream, entries);
      if (entries.length >= batch) isBehind = true;
    }
    await Promise.all(
      shards.map(async (owned) => {
        const entries = byStream.get(owned.stream) ?? [];
        if (entries.length === 0) {
          if (owned.cursor === '0') owned.cursor = '>';
          return;
        }
        try {
          if (!(await this.consumer.consume(owned.shard, entries, owned.abort.signal))) return;
          const ids = this.acks.get(owned.stream) ?? [];
          for (const [id] of entries) ids.push(id);
          this.acks.set(owned.stream, ids);
        } catch (err) {
          if (owned.abort.signal.aborted) return;
          if (!isTransientFailure(err)) log.error({ err, shard: owned.shard, group }, 'shard batch failed');
          owned.cursor = null; // read again from what is pending
        }
      }),
    );
    this.isBehind = isBehind || shards.some((owned) => owned.cursor === null);
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
