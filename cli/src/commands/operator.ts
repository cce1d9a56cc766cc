// What the operator commands (replay, audit, rebuild) share: exit codes, one-line failures, and opening Redis and
// PostgreSQL with a deadline. Unlike the services, which keep retrying, an operator command gives up after a few
// seconds and says which URL it could not reach; an expected failure never prints a stack trace.
import { type Command, CommanderError } from 'commander';
import pg from 'pg';
import { isTransientFailure } from '#eventlog';
import { Identifier } from '#events';
import {
  type Config,
  closeRedis,
  connectPostgres,
  createLogger,
  createRedis,
  describePostgres,
  describeRedis,
  type Logger,
  loadConfig,
  type Pool,
  type RedisClient,
  START_HINT,
  whenRedisReady,
} from '#runtime';

/** Exit codes of the operator commands, listed in each command's --help. */
export const EXIT = {
  ok: 0,
  /** Audit: the projections diverge from the log. */
  failed: 1,
  /** A bad argument, or a conflict: a database that is not the broker's, a rebuild target that is not empty. */
  usage: 2,
  /** Redis or PostgreSQL could not be reached. */
  unreachable: 3,
} as const;

export const EXIT_HELP =
  '\nExit codes: 0 ok, 1 failed (audit: a divergence), 2 bad argument or conflict (a database that is not the\n' +
  "broker's, a rebuild target that is not empty), 3 Redis or PostgreSQL unreachable.";

/** An expected failure: printed as one line, `broker <command>: <message>`, with its exit code. */
export class OperatorError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

export function usageError(message: string): OperatorError {
  return new OperatorError(message, EXIT.usage);
}

const IDENTIFIER = new RegExp(Identifier.pattern ?? '');

/** `--shop`: a shop id as SPEC §3 spells it. */
export function parseShop(value: string | undefined): string | undefined {
  if (value !== undefined && !IDENTIFIER.test(value)) {
    throw usageError(`--shop takes 1-64 of A-Z a-z 0-9 _ . : - (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** How long a command waits for Redis or PostgreSQL before it gives up. */
const CONNECT_TIMEOUT_MS = 5000;

/** Commander's own argument errors (unknown option, missing value) exit 2, like ours; help still exits 0. */
export function exitingTwoOnBadArguments(command: Command): Command {
  return command.exitOverride((err) => {
    if (err.exitCode === 1) throw new CommanderError(EXIT.usage, err.code, err.message);
    throw err;
  });
}

export interface OperatorSession {
  config: Config;
  log: Logger;
  /** A logger that says nothing: the services' clients log outages, and here the command reports them. */
  quiet: Logger;
  /** Closed by `run` when the command ends, whatever happened. */
  closeLater(close: () => Promise<unknown>): void;
  /** What to probe when a command fails mid-way: names the dependency that went away. */
  watch(what: string, probe: () => Promise<unknown>): void;
}

/**
 * Runs an operator command: logs go to stderr (stdout is the command's output), expected failures become one
 * line and an exit code, and everything opened is closed. `body` answers the exit code.
 */
export async function runOperator(name: string, body: (session: OperatorSession) => Promise<number>) {
  // Not setup(): logs go to stderr, as stdout is the command's output, and the warnings about development
  // secrets concern the services, which these commands do not run.
  const { config } = loadConfig(process.env);
  const log = createLogger(config.logLevel, process.stderr);
  const closers: Array<() => Promise<unknown>> = [];
  const probes: Array<[string, () => Promise<unknown>]> = [];
  const session: OperatorSession = {
    config,
    log,
    quiet: log.child({}, { level: 'silent' }),
    closeLater: (close) => closers.push(close),
    watch: (what, probe) => probes.push([what, probe]),
  };
  try {
    process.exitCode = await body(session);
  } catch (err) {
    const failure = err instanceof OperatorError ? err : await explainFailure(err, probes);
    process.stderr.write(`broker ${name}: ${failure.message}\n`);
    process.exitCode = failure.exitCode;
  } finally {
    for (const close of closers.reverse()) {
      await close().catch((err: Error) => log.debug({ reason: err.message }, 'close failed'));
    }
  }
}

/**
 * A failure mid-way: when a dependency no longer answers, say which (client errors for a lost connection are too
 * varied to classify by message). When all of them answer, it is a bug and keeps its stack.
 */
async function explainFailure(err: unknown, probes: Array<[string, () => Promise<unknown>]>) {
  for (const [what, probe] of probes) {
    const isReachable = await withDeadline(probe(), 2000).then(
      () => true,
      () => false,
    );
    if (!isReachable) return new OperatorError(`lost ${what} (${(err as Error).message})`, EXIT.unreachable);
  }
  if (isTransientFailure(err)) {
    return new OperatorError(`a dependency failed: ${(err as Error).message}`, EXIT.unreachable);
  }
  throw err;
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref()),
  ]);
}

/** Connects to Redis (fail-fast client: a command fails at once when the connection is gone). */
export async function openRedis(session: OperatorSession, name: string): Promise<RedisClient> {
  const { config, quiet } = session;
  const redis = createRedis(config.redis, quiet, { name, failFast: true });
  let reason = 'no answer';
  redis.on('error', (err: Error) => {
    reason = err.message;
  });
  const target = describeRedis(config.redis);
  try {
    await whenRedisReady(redis, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
  } catch {
    redis.disconnect();
    throw new OperatorError(
      `Redis unreachable at ${target} (${reason}); gave up after ${CONNECT_TIMEOUT_MS / 1000} s — ${START_HINT}`,
      EXIT.unreachable,
    );
  }
  session.closeLater(() => closeRedis(redis));
  session.watch(`Redis at ${target}`, () => redis.ping());
  return redis;
}

/**
 * The columns the operator commands read, table by table: a database that lacks one is not the broker's (another
 * application's, or one from before a migration). Fixed text, `LIMIT 0`: it reads no rows.
 */
const BROKER_SCHEMA = `
  SELECT id, shard, stream_ms, stream_seq, shop_id, type, v, at, source, data FROM events LIMIT 0;
  SELECT shop_id, client_id, type, token_id, registered_at, token_rotated_at, revoked_at, last_seen_at
    FROM devices LIMIT 0;
  SELECT conn_id, edge_id, shop_id, client_id, type, remote_addr, connected_at, closed_at, close_reason
    FROM connections LIMIT 0;
  SELECT id, event_id, shop_id, state, attempts, created_at, delivered_at, handled_at, failed_at FROM messages LIMIT 0;
  SELECT shard, stream_ms, stream_seq FROM projection_checkpoints LIMIT 0`;

/** Connects to an existing database that holds the broker's schema; never creates anything. */
export async function openPostgres(session: OperatorSession, url: string, max = 4): Promise<Pool> {
  const target = describePostgres(url);
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  pool.on('error', (err) => session.log.debug({ reason: err.message }, 'idle postgres client lost'));
  try {
    await pool.query(BROKER_SCHEMA);
  } catch (err) {
    await pool.end();
    const code = (err as { code?: string }).code;
    if (code === '3D000') throw new OperatorError(`no database at ${target}`, EXIT.usage);
    if (code === '42P01' && /relation "events"/.test((err as Error).message)) {
      throw new OperatorError(`no broker schema in ${target} (run \`broker migrate\`?)`, EXIT.usage);
    }
    if (isSchemaConflict(err)) throw notTheBrokers(target, err);
    throw unreachablePostgres(target, err);
  }
  session.closeLater(() => pool.end());
  session.watch(`PostgreSQL at ${target}`, () => pool.query('SELECT 1'));
  return pool;
}

/** PostgreSQL refused a statement over the tables themselves (class 42: a missing table or column, a type). */
export function isSchemaConflict(err: unknown): boolean {
  return /^42/.test((err as { code?: string }).code ?? '');
}

export function notTheBrokers(target: string, err: unknown): OperatorError {
  return new OperatorError(`${target} is not the broker's database (${(err as Error).message})`, EXIT.usage);
}

/** Connects to a database, creating it and applying the schema when missing (as the services do). */
export async function createPostgres(session: OperatorSession, url: string, max: number): Promise<Pool> {
  const target = describePostgres(url);
  let pool: Pool;
  try {
    pool = await connectPostgres(url, session.quiet, {
      max,
      signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
    });
  } catch (err) {
    // Applying the schema failed on tables of another shape: a conflict, not an outage.
    if (isSchemaConflict(err)) throw notTheBrokers(target, err);
    throw unreachablePostgres(target, err);
  }
  pool.on('error', (err) => session.log.debug({ reason: err.message }, 'idle postgres client lost'));
  session.closeLater(() => pool.end());
  session.watch(`PostgreSQL at ${target}`, () => pool.query('SELECT 1'));
  return pool;
}

function unreachablePostgres(target: string, err: unknown): OperatorError {
  const reason = (err as Error).message || (err as { code?: string }).code || 'no answer';
  return new OperatorError(
    `PostgreSQL unreachable at ${target} (${reason}); gave up after ${CONNECT_TIMEOUT_MS / 1000} s — ${START_HINT}`,
    EXIT.unreachable,
  );
}
