// connectPostgres on a real server: a missing database is created, db/schema.sql is applied, and applying it
// again — also from several pools at once, as services starting together do — changes nothing and fails nothing.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, migrate, type Pool } from '#runtime';
import { createTestContext, databaseUrlFor, dropDatabase, type TestContext, testName } from '#test-support';

const SCHEMA = readFileSync(new URL('../../../db/schema.sql', import.meta.url), 'utf8');
const TABLES = [...SCHEMA.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)/g)].map((m) => m[1]!).sort();

async function tablesOf(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
  );
  return rows.map((row) => row.table_name);
}

/** Columns and indexes: what a second migration must leave exactly as it was. */
async function shapeOf(pool: Pool): Promise<unknown[]> {
  const columns = await pool.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name`,
  );
  const indexes = await pool.query(
    `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
  );
  return [...columns.rows, ...indexes.rows];
}

describe('when a service connects to PostgreSQL', () => {
  let ctx: TestContext;
  const pools: Pool[] = [];
  const extraDatabases: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    for (const url of extraDatabases) await dropDatabase(url);
    await ctx?.cleanup();
  });

  async function connect(url = ctx.databaseUrl): Promise<Pool> {
    const pool = await connectPostgres(url, ctx.log, { max: 2 });
    pools.push(pool);
    return pool;
  }

  it('finds the schema knows some tables', () => {
    expect(TABLES).toEqual(expect.arrayContaining(['connections', 'devices', 'events', 'messages']));
  });

  it('creates the missing database and every table of the schema', async () => {
    const pool = await connect();
    const { rows } = await pool.query<{ name: string }>('SELECT current_database() AS name');
    expect(rows[0]?.name).toBe(new URL(ctx.databaseUrl).pathname.slice(1));
    expect(await tablesOf(pool)).toEqual(expect.arrayContaining(TABLES));
  });

  it('applies the schema again without changing it or the rows', async () => {
    const pool = await connect();
    await pool.query(
      `INSERT INTO devices (shop_id, client_id, type, token_id, registered_at) VALUES ('s1', 'pos-1', 'main', 't1', now())`,
    );
    const before = await shapeOf(pool);
    await migrate(pool);
    await migrate(pool);
    expect(await shapeOf(pool)).toEqual(before);
    const { rows } = await pool.query('SELECT client_id FROM devices');
    expect(rows).toEqual([{ client_id: 'pos-1' }]);
  });

  it('lets several pools apply the schema at once without an error (the advisory lock)', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    const before = await shapeOf(a!);
    const results = await Promise.allSettled([migrate(a!), migrate(b!), migrate(a!), migrate(b!)]);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await shapeOf(b!)).toEqual(before);
  });

  it('takes no table lock when this version of the schema is applied (a start beside running commits)', async () => {
    const [writer, starter] = await Promise.all([connect(), connect()]);
    const open = await writer!.connect();
    try {
      // A persister's transaction in flight: its updates of messages hold ROW EXCLUSIVE on the table, which
      // conflicts with the SHARE lock of a CREATE INDEX. Replaying the file would wait here until the commit
      // (or, holding SHARE on events already, deadlock with it).
      await open.query('BEGIN');
      await open.query('LOCK TABLE messages IN ROW EXCLUSIVE MODE');
      const migrated = migrate(starter!).then(() => 'migrated');
      const waited = new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting after 5 s'));
      expect(await Promise.race([migrated, waited])).toBe('migrated');
    } finally {
      await open.query('ROLLBACK');
      open.release();
    }
  });

  it('applies a schema it has not recorded (an upgrade), and records it', async () => {
    const pool = await connect();
    await pool.query('DELETE FROM schema_applied');
    await pool.query('DROP INDEX messages_failed_pending');
    await migrate(pool);
    const { rows } = await pool.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'messages_failed_pending'`);
    expect(rows).toHaveLength(1);
    const { rowCount } = await pool.query('SELECT 1 FROM schema_applied');
    expect(rowCount).toBe(1);
  });

  it('lets services starting together on a missing database all come up', async () => {
    const url = databaseUrlFor(ctx.databaseUrl, `${testName()}_together`);
    extraDatabases.push(url);
    const started = await Promise.allSettled([connect(url), connect(url), connect(url)]);
    expect(started.filter((r) => r.status === 'rejected')).toEqual([]);
    const [first] = started;
    if (first?.status !== 'fulfilled') throw new Error('first connection failed');
    expect(await tablesOf(first.value)).toEqual(expect.arrayContaining(TABLES));
  });
});
