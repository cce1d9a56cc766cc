// `broker rebuild --into <url>`: the archive and the projections rebuilt from the history (archive and streams)
// into an empty database by the persister's own batch projector; then `broker audit` against it passes.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectPostgres } from '#runtime';
import { createTestContext, databaseUrlFor, dropDatabase, type TestContext, testName } from '#test-support';
import { expectedRows, projectedTables, tablesOf } from '../persister/harness';
import { type Appended, appendAll, appendAndProject, runBroker, shopsLog, trimOlderHalf } from './harness';

let ctx: TestContext;
let appended: Appended[];
let target: string;

beforeAll(async () => {
  ctx = await createTestContext({ SHARDS: '8' }); // more shards than shops: some streams are empty
  target = databaseUrlFor(inject('databaseUrl'), `${testName()}_rebuilt`);
  const events = shopsLog(10);
  const cut = events.length - 40;
  appended = await appendAndProject(ctx, events.slice(0, cut));
  await trimOlderHalf(ctx, appended);
  appended.push(...(await appendAll(ctx.redis, ctx.keys, events.slice(cut)))); // only in the streams
});
afterAll(async () => {
  await dropDatabase(target);
  await ctx.cleanup();
});

describe('when the target database does not exist yet', () => {
  it('creates it, rebuilds every event with plain progress lines, and audit agrees', async () => {
    const run = await runBroker(ctx, ['rebuild', '--into', target, '--batch', '7']);
    expect(run.stdout).toMatch(new RegExp(`^rebuild: ${appended.length} events into .* events/s\\)\\n`));
    expect(run.stderr).toContain(`rebuild: 0/${appended.length} events (0%)\n`);
    expect(run.stderr).toContain(`rebuild: ${appended.length}/${appended.length} events (100%)\n`);
    expect(run.code).toBe(0);

    const audit = await runBroker(ctx, ['audit'], { DATABASE_URL: target });
    expect(audit.stdout).toMatch(
      new RegExp(
        `^audit: ${appended.length} events folded, \\d+ rows compared, 0 not yet projected, 0 differences\\n$`,
      ),
    );
    expect(audit.code).toBe(0);

    const pool = await connectPostgres(target, ctx.log);
    try {
      expect(await projectedTables(pool)).toEqual(tablesOf(expectedRows(appended)));
    } finally {
      await pool.end();
    }
  });
});

describe('when the target database is not empty', () => {
  it('refuses it, and with --force empties it and rebuilds', async () => {
    const refused = await runBroker(ctx, ['rebuild', '--into', target]);
    expect(refused.stderr).toMatch(/^broker rebuild: postgres:\/\/.* is not empty; .* --force/m);
    expect(refused.code).toBe(2); // SPEC §7: a conflict

    const forced = await runBroker(ctx, ['rebuild', '--into', target, '--force']);
    expect(forced.code).toBe(0);
    const audit = await runBroker(ctx, ['audit'], { DATABASE_URL: target });
    expect(audit.stdout).toContain(`${appended.length} events folded`);
    expect(audit.code).toBe(0);
  });
});

describe('when --into names the database the history is read from', () => {
  it('exits 2 without touching it', async () => {
    const run = await runBroker(ctx, ['rebuild', '--into', ctx.databaseUrl, '--force']);
    expect(run.stderr).toContain('--into names the database in DATABASE_URL');
    expect(run.code).toBe(2);
  });
});
