// `broker audit` fails (exit 1) on any divergence between the log and PostgreSQL and names it: the table, the row,
// the field, what the log says and what the table holds. Each case damages one row, audits, and repairs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareStreamIds } from '#events';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { type Appended, appendAndProject, runBroker, shopsLog, trimOlderHalf } from './harness';

let ctx: TestContext;
let pool: Pool;
let appended: Appended[];
let streamStarts: Map<number, string>;

beforeAll(async () => {
  ctx = await createTestContext();
  appended = await appendAndProject(ctx, shopsLog(10));
  streamStarts = await trimOlderHalf(ctx, appended);
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

async function audit() {
  const run = await runBroker(ctx, ['audit']);
  expect(run.stderr).toBe('');
  return run;
}

/** Runs `damage`, audits, and puts the row back as it was, whatever the audit said. */
async function auditWith(table: string, key: string, id: string, damage: () => Promise<unknown>) {
  const saved = await pool.query(`SELECT row_to_json(t) AS row FROM ${table} t WHERE ${key} = $1`, [id]);
  expect(saved.rows).toHaveLength(1);
  await damage();
  try {
    return await audit();
  } finally {
    await pool.query(`DELETE FROM ${table} WHERE ${key} = $1`, [id]);
    await pool.query(`INSERT INTO ${table} SELECT * FROM json_populate_record(NULL::${table}, $1)`, [
      saved.rows[0].row,
    ]);
  }
}

const isStillStreamed = (a: Appended) =>
  compareStreamIds(a.streamId, streamStarts.get(a.shard) ?? '0-0') >= 0;

async function deliveredMessage(): Promise<{ id: string; delivered_at: Date }> {
  const { rows } = await pool.query(
    `SELECT id, delivered_at FROM messages WHERE state = 'delivered' LIMIT 1`,
  );
  return rows[0];
}

describe('when a message row is deleted', () => {
  it('exits 1 and names the missing message', async () => {
    const { id } = await deliveredMessage();
    const run = await auditWith('messages', 'id', id, () =>
      pool.query('DELETE FROM messages WHERE id = $1', [id]),
    );
    expect(run.stdout).toContain(`messages: message ${id}: missing (the log up to the checkpoint has it)\n`);
    expect(run.stdout).toMatch(/, 1 difference\n$/);
    expect(run.code).toBe(1);
  });
});

describe('when a message row is altered', () => {
  it('names each field that differs with what the log expects and what was found', async () => {
    const { id, delivered_at } = await deliveredMessage();
    const run = await auditWith('messages', 'id', id, () =>
      pool.query(`UPDATE messages SET state = 'pending', delivered_at = NULL, status = 7 WHERE id = $1`, [
        id,
      ]),
    );
    expect(run.stdout).toContain(`messages: message ${id}: state: expected "delivered", found "pending"\n`);
    expect(run.stdout).toContain(
      `messages: message ${id}: delivered_at: expected "${delivered_at.toISOString()}", found null\n`,
    );
    expect(run.stdout).toContain(`messages: message ${id}: status: expected 0, found 7\n`);
    expect(run.stdout).toMatch(/, 3 differences\n$/);
    expect(run.code).toBe(1);
  });
});

describe('when an archived event is altered', () => {
  it('names the event and the field: the live stream, not the archive, is the reference', async () => {
    const notify = appended.find((a) => a.event.type === 'NotifyRequested' && isStillStreamed(a))!;
    const id = notify.event.id;
    const run = await auditWith('events', 'id', id, () =>
      pool.query(`UPDATE events SET data = jsonb_set(data, '{status}', '99') WHERE id = $1`, [id]),
    );
    expect(run.stdout).toContain(`events: event ${id}: data.status: expected 0, found 99\n`);
    expect(run.stdout).toMatch(/, 1 difference\n$/);
    expect(run.code).toBe(1);
  });
});

describe('when an archived event is deleted', () => {
  it('names the missing event while the stream still holds it', async () => {
    const id = appended.find((a) => a.event.type === 'MessageDelivered' && isStillStreamed(a))!.event.id;
    const run = await auditWith('events', 'id', id, () =>
      pool.query('DELETE FROM events WHERE id = $1', [id]),
    );
    expect(run.stdout).toContain(`events: event ${id}: missing (the log up to the checkpoint has it)\n`);
    expect(run.code).toBe(1);
  });

  it('names the rows it explained once only the archive held it', async () => {
    const notify = appended.find((a) => a.event.type === 'NotifyRequested' && !isStillStreamed(a))!;
    const id = notify.event.id;
    const run = await auditWith('events', 'id', id, () =>
      pool.query('DELETE FROM events WHERE id = $1', [id]),
    );
    expect(run.stdout).toMatch(
      new RegExp(
        `messages: message ${id}\\.dev-1: unexpected \\(no event up to the checkpoint explains it\\)\\n`,
      ),
    );
    expect(run.code).toBe(1);
  });
});

describe('when every damaged row is repaired', () => {
  it('exits 0 again', async () => {
    const run = await audit();
    expect(run.stdout).toMatch(/, 0 differences\n$/);
    expect(run.code).toBe(0);
  });
});
