// Our database's activity counters (pg_stat_database), to tell how many transactions and row writes a load cost.
import type pg from 'pg';

export interface PgActivity {
  commits: number;
  inserted: number;
  updated: number;
}

/** Our database's transaction and row counters (PostgreSQL flushes them at least once a second). */
export async function pgActivity(pool: pg.Pool): Promise<PgActivity> {
  const { rows } = await pool.query<PgActivity>(
    `SELECT xact_commit::float8 AS commits, tup_inserted::float8 AS inserted, tup_updated::float8 AS updated
       FROM pg_stat_database WHERE datname = current_database()`,
  );
  return rows[0] ?? { commits: 0, inserted: 0, updated: 0 };
}
