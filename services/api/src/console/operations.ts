// The console's operations view: readiness, who is running (edges, consumer group members), how far behind the
// consumers are per shard, the retry queue, messages whose retries ran out, and dead letters. Each section is
// read on its own, so a dependency that is down blanks only the sections that need it: an operator opens this
// page when something is wrong.
import { Queue } from 'bullmq';
import { groupLag, listDeadLetters } from '#eventlog';
import { isBrokerError, parseStreamId, type rest } from '#events';
import { closeRedis, createRedis, type ReadinessProbe, type RedisClient } from '#runtime';
import { type ApiContext, readRedis } from '../context';
import { messageOf, selectMessage } from '../queries';
import { defineRoute, type Route } from '../route';
import { selectFailedMessages } from './queries';

// The consumer groups and the retry queue are named by their services (persister, dispatcher); services do not
// import each other, so the names are repeated here. They belong in libs/events beside Keys.
const GROUPS = ['persister', 'dispatcher'] as const;
const RETRY_QUEUE = 'redeliveries';
const SHOWN_FAILED = 20;
const SHOWN_DEAD_LETTERS = 50;
/** A section not read by then is shown as unanswered: the page must not hang on the dependency that does. */
const SECTION_TIMEOUT_MS = 3000;

export type Section<T> = { ok: true; value: T } | { ok: false; error: string };

export interface ShardLag {
  shard: number;
  group: string;
  pending: number;
  unread: number;
  oldest_unfinished: string | null;
  oldest_unfinished_age_ms: number | null;
}

export interface Operations {
  at: string;
  readiness: Section<Awaited<ReturnType<ReadinessProbe>>>;
  services: Section<{
    edges: { live: string[]; dead: string[] };
    members: Array<{ group: string; consumer: string; heartbeat_age_ms: number }>;
  }>;
  lag: Section<ShardLag[]>;
  retries: Section<Record<string, number>>;
  failed: Section<{ total: number; items: Array<rest.MessageView & { failed_at: string }> }>;
  dead_letters: Section<Awaited<ReturnType<typeof listDeadLetters>>>;
}

export interface OperationsRoute {
  route: Route;
  /** Closes the retry queue's connection, if one was opened. */
  close(): Promise<void>;
}

export function operationsRoute(ctx: ApiContext, probe: ReadinessProbe): OperationsRoute {
  let queue: { queue: Queue; connection: RedisClient } | undefined;
  // Opened on first use, on its own connection: BullMQ defines its Lua commands as it starts, and a definition
  // landing while the api's auto-pipelined connection has a batch in flight crashes ioredis (ioredis#1931).
  const retryQueue = () => {
    if (queue === undefined) {
      const connection = createRedis(ctx.config.redis, ctx.log, {
        name: 'api-console-retries',
        failFast: true,
        autoPipelining: false,
      });
      const bull = new Queue(RETRY_QUEUE, {
        connection,
        prefix: ctx.keys.bullPrefix(),
        skipVersionCheck: true,
      });
      bull.on('error', (err) => ctx.log.warn({ reason: err.message }, 'console: retry queue error'));
      queue = { queue: bull, connection };
    }
    return queue.queue;
  };
  const close = async () => {
    if (queue === undefined) return;
    await queue.queue.close();
    await closeRedis(queue.connection);
  };
  const route = defineRoute({
    method: 'get',
    path: '/operations',
    name: 'consoleOperations',
    summary: 'Readiness, running services, consumer lag, retries, failed deliveries and dead letters.',
    success: { status: 200, description: 'the operations snapshot' },
    errors: [],
    example: {},
    async run() {
      const nowMs = ctx.nowMs();
      const section = <T>(name: string, read: Promise<T>) => sectionOf(ctx, name, read);
      const [readiness, services, lag, retries, failed, deadLetters] = await Promise.all([
        section('readiness', probe()),
        section('services', servicesOf(ctx, nowMs)),
        section('lag', lagOf(ctx, nowMs)),
        section(
          'retries',
          readRedis(retryQueue().getJobCounts('wait', 'delayed', 'active', 'prioritized', 'failed')),
        ),
        section('failed', failedMessagesOf(ctx)),
        section('dead letters', readRedis(listDeadLetters(ctx.redis, ctx.keys, SHOWN_DEAD_LETTERS))),
      ]);
      const body: Operations = {
        at: new Date(nowMs).toISOString(),
        readiness,
        services,
        lag,
        retries,
        failed,
        dead_letters: deadLetters,
      };
      return { status: 200, body };
    },
  });
  return { route, close };
}

/** A section's value, or what went wrong reading it: the page shows the reason beside the other sections. */
async function sectionOf<T>(ctx: ApiContext, name: string, read: Promise<T>): Promise<Section<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Section<T>>((resolve) => {
    timer = setTimeout(() => {
      ctx.log.info({ section: name, timeout_ms: SECTION_TIMEOUT_MS }, 'console: section unanswered');
      resolve({ ok: false, error: `no answer in ${SECTION_TIMEOUT_MS} ms` });
    }, SECTION_TIMEOUT_MS);
  });
  try {
    return await Promise.race([read.then((value): Section<T> => ({ ok: true, value })), timeout]);
  } catch (err) {
    const reason = (err as Error).message;
    // A dependency away is expected (one quiet line); anything else is a fault in this code.
    if (isBrokerError(err))
      ctx.log.info({ section: name, code: err.code, reason }, 'console: section unavailable');
    else ctx.log.error({ section: name, err }, 'console: section failed');
    return { ok: false, error: reason };
  } finally {
    clearTimeout(timer);
  }
}

async function servicesOf(ctx: ApiContext, nowMs: number) {
  const [live, dead, ...members] = await Promise.all([
    readRedis(ctx.presence.liveEdges(nowMs)),
    readRedis(ctx.presence.deadEdges(nowMs)),
    ...GROUPS.map((group) => readRedis(ctx.redis.zrange(ctx.keys.members(group), 0, -1, 'WITHSCORES'))),
  ]);
  const rows: Array<{ group: string; consumer: string; heartbeat_age_ms: number }> = [];
  GROUPS.forEach((group, i) => {
    const flat = members[i]!;
    for (let j = 0; j + 1 < flat.length; j += 2) {
      rows.push({ group, consumer: flat[j]!, heartbeat_age_ms: Math.max(0, nowMs - Number(flat[j + 1])) });
    }
  });
  return { edges: { live: [...live].sort(), dead: dead.sort() }, members: rows };
}

async function lagOf(ctx: ApiContext, nowMs: number): Promise<ShardLag[]> {
  const reads = ctx.keys.allShards().flatMap((shard) =>
    GROUPS.map(async (group): Promise<ShardLag> => {
      const lag = await readRedis(groupLag(ctx.redis, ctx.keys.stream(shard), group));
      const oldest = lag.oldestUnfinished;
      return {
        shard,
        group,
        pending: lag.pending,
        unread: lag.unread,
        oldest_unfinished: oldest,
        // '0-0' stands for "the group is missing": the age is then unknown, not 56 years.
        oldest_unfinished_age_ms:
          oldest === null || oldest === '0-0' ? null : Math.max(0, nowMs - parseStreamId(oldest).ms),
      };
    }),
  );
  return Promise.all(reads);
}

async function failedMessagesOf(ctx: ApiContext) {
  const { total, items } = await selectFailedMessages(ctx.pool, SHOWN_FAILED);
  const rows = await Promise.all(items.map(({ id }) => selectMessage(ctx.pool, id)));
  const messages = rows.flatMap((row, i) =>
    row === null ? [] : [{ ...messageOf(row), failed_at: items[i]!.failed_at.toISOString() }],
  );
  return { total, items: messages };
}
