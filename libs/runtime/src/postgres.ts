// PostgreSQL: a pool that waits for the server (one quiet line while it is down), creates the database when
// it is missing, and applies db/schema.sql under an advisory lock so services starting together do not race.
import { createHash } from 'node:crypto';
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

/**
 * Applies db/schema.sql (idempotent) under an advisory lock, once per version of the file: the digest of what was
 * applied is recorded in `schema_applied`, and a start that finds it takes no table lock at all. Replaying the file
 * at every start is not harmless: CREATE INDEX IF NOT EXISTS takes a SHARE lock on its table before it finds the
 * index, and the file's statements run as one implicit transaction, so a start beside a running persister can
 * deadlock with its commits (seen when every service restarted at once). A real migration that still meets one
 * (40P01, PostgreSQL rolled it back whole) is tried again.
 */
export async function migrate(pool: Pool): Promise<void> {
  const sql = readFileSync(SCHEMA_FILE, 'utf8');
  const digest = createHash('sha256').update(sql).digest('hex');
  for (let attempt = 1; ; attempt += 1) {
    try {
      await migrateOnce(pool, sql, digest);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== DEADLOCK || attempt >= 5) throw err;
      await delay(50 * attempt);
    }
  }
}

const DEADLOCK = '40P01';
const UNDEFINED_TABLE = '42P01';

async function migrateOnce(pool: Pool, sql: string, digest: string): Promise<void> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onLost = (err: Error) => {
    lost = err; // the statement in flight fails with it too; see inTransaction
  };
  client.on('error', onLost);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]);
    if (await isApplied(client, digest)) return;
    await client.query(sql);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_applied (digest text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
       INSERT INTO schema_applied (digest) VALUES ('${digest}') ON CONFLICT DO NOTHING`,
    );
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]).catch(() => undefined); // dropped with the session anyway
    client.off('error', onLost);
    client.release(lost);
  }
}

async function isApplied(client: PoolClient, digest: string): Promise<boolean> {
  try {
    const { rowCount } = await client.query('SELECT 1 FROM schema_applied WHERE digest = $1', [digest]);
    return rowCount === 1;
  } catch (err) {
    if ((err as { code?: string }).code === UNDEFINED_TABLE) return false; // a database from before the record
    throw err;
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
