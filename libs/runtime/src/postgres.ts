// PostgreSQL: a pool that waits for the server (one quiet line while it is down), creates the database when
// it is missing, and applies db/schema.sql under an advisory lock so services starting together do not race.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Logger } from 'pino';
import { delay } from './lifecycle';
import { packageFile } from './paths';
import { START_HINT } from './redis';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const SCHEMA_FILE = packageFile('db/schema.sql');
const SCHEMA_LOCK = 715_020_001; // advisory lock key of schema migration, any fixed number

export function describePostgres(url: string): string {
  return url.replace(/\/\/([^:@/]*)(:[^@/]*)?@/, '//$1@');
}

function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', '57P03', '57P01'].includes(
    code,
  );
}

export interface PostgresOptions {
  max?: number;
  applySchema?: boolean;
  signal?: AbortSignal;
}

export async function connectPostgres(
  url: string,
  log: Logger,
  options: PostgresOptions = {},
): Promise<Pool> {
  const target = describePostgres(url);
  let hasWarned = false;
  for (let attempt = 0; ; attempt++) {
    try {
      await ensureDatabase(url, log);
      const pool = new pg.Pool({
        connectionString: url,
        max: options.max ?? 10,
        connectionTimeoutMillis: 5000,
        // Our statements are named (prepared once per connection). After five runs PostgreSQL may switch one to
        // a generic plan, costed on the table as it was then: a persister started on an empty database cached a
        // sequential scan of `messages` for its ack UPDATE, and each ack batch then read the whole table (113 ms
        // at 200,000 rows, PostgreSQL's CPU growing with the table). Planning per run costs microseconds.
        options: '-c plan_cache_mode=force_custom_plan',
      });
      pool.on('error', (err) =>
        log.warn({ postgres: target, reason: err.message }, 'idle postgres client lost'),
      );
      if (options.applySchema !== false) {
        // A pool whose schema failed is not handed out: closed, so it neither leaks on a retry nor keeps a command
        // that reports the failure alive for the idle timeout.
        await migrate(pool).catch(async (err: unknown) => {
          await pool.end();
          throw err;
        });
      }
      if (hasWarned) log.info({ postgres: target }, 'postgres reachable again');
      return pool;
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      if (!hasWarned) {
        log.warn(
          { postgres: target, reason: (err as Error).message },
          `postgres unreachable; ${START_HINT}; retrying`,
        );
        hasWarned = true;
      }
      if (options.signal?.aborted) throw new Error('aborted while waiting for postgres');
      await delay(Math.min(200 * (attempt + 1), 2000), options.signal);
    }
  }
}

/** SPEC §7: the database named in DATABASE_URL is created when missing. */
async function ensureDatabase(url: string, log: Logger): Promise<void> {
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  probe.on('error', () => undefined); // a probe's late socket error has already been reported by connect()
  try {
    await probe.connect();
    await probe.end();
    return;
  } catch (err) {
    await probe.end().catch(() => undefined); // the connection never opened; nothing to close cleanly
    if ((err as { code?: string }).code !== '3D000') throw err;
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString(), connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    log.info({ database: name }, 'database created');
  } catch (err) {
    // Created meanwhile by another service: 42P04 when it was committed first, 23505 (pg_database_datname_index)
    // when both CREATE DATABASE ran at once.
    const code = (err as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw err;
  } finally {
    await admin.end();
  }
}

/** Drops a database (and its connections): test and benchmark clean-up. The database named in the URL. */
export async function dropDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  target.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: target.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Applies db/schema.sql (idempotent) under an advisory lock. */
export async function migrate(pool: Pool): Promise<void> {
  const sql = readFileSync(SCHEMA_FILE, 'utf8');
  const client = await pool.connect();
  let lost: Error | undefined;
  const onLost = (err: Error) => {
    lost = err; // the statement in flight fails with it too; see inTransaction
  };
  client.on('error', onLost);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]);
    await client.query(sql);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]).catch(() => undefined); // dropped with the session anyway
    client.off('error', onLost);
    client.release(lost);
  }
}

/** Runs fn in one transaction. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  // The pool stops listening for a client's errors while it is checked out: without a listener, a connection
  // lost between two statements is an uncaught 'error' event that ends the process. The failing statement
  // reports the loss to the caller; this only records it.
  const onLost = (err: Error) => {
    failure ??= err;
  };
  client.on('error', onLost);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failure = err as Error;
    await client.query('ROLLBACK').catch(() => undefined); // the original error is what matters
    throw err;
  } finally {
    client.off('error', onLost);
    client.release(failure); // a client that failed is destroyed, not reused
  }
}
