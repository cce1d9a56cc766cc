// SPEC §7: every command's expected failure (a bad argument, a conflict, Redis or PostgreSQL unreachable, a
// database that is not the broker's) is one line on stderr, nothing on stdout, and an exit code: 2 for a bad
// argument or a conflict, 3 for a dependency unreachable. Never a stack trace, never the usage text.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type Env } from '#runtime';
import { createTestContext, databaseUrlFor, dropDatabase, type TestContext, unusedPort } from '#test-support';
import { runBroker } from './harness';

let ctx: TestContext;
let closedPort: number;
let otherApp: string;
let noSchema: string;
let notEmpty: string;

async function createDatabase(url: string, statements: string[] = []): Promise<void> {
  const admin = new pg.Client({ connectionString: databaseUrlFor(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${new URL(url).pathname.slice(1)}"`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  ctx = await createTestContext();
  await (await connectPostgres(ctx.databaseUrl, ctx.log)).end(); // the broker's own database, with its schema
  closedPort = await unusedPort();
  otherApp = `${ctx.databaseUrl}_other_app`;
  noSchema = `${ctx.databaseUrl}_no_schema`;
  notEmpty = `${ctx.databaseUrl}_not_empty`;
  // Another application's database: an `events` table of its own shape.
  await createDatabase(otherApp, ['CREATE TABLE events (id serial PRIMARY KEY, title text NOT NULL)']);
  await createDatabase(noSchema);
  await (await connectPostgres(notEmpty, ctx.log)).end();
  const target = new pg.Client({ connectionString: notEmpty });
  await target.connect();
  await target.query(`INSERT INTO projection_checkpoints (shard, stream_ms, stream_seq) VALUES (0, 1, 0)`);
  await target.end();
});
afterAll(async () => {
  for (const url of [otherApp, noSchema, notEmpty]) await dropDatabase(url);
  await ctx?.cleanup();
});

interface Case {
  what: string;
  args: string[];
  env?: () => Env;
  exit: 2 | 3;
  stderr: () => RegExp;
}

const NO_SUCH_DB = () => databaseUrlFor(ctx.databaseUrl, 'no_such_database_here');
const CLOSED_REDIS = () => ({ REDIS_URL: `redis://127.0.0.1:${closedPort}` });
const CLOSED_POSTGRES = () => ({ DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/broker` });
const quoted = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const CASES: Case[] = [
  // Bad arguments: commander's own refusals, for every command, are one line too.
  {
    what: 'an unknown command',
    args: ['nothing'],
    exit: 2,
    stderr: () => /^broker: unknown command 'nothing'$/,
  },
  {
    what: 'start: an unknown service',
    args: ['start', 'nothing'],
    exit: 2,
    stderr: () => /^broker start: unknown service "nothing"/,
  },
  {
    what: 'start: an unknown option',
    args: ['start', 'all', '--bogus'],
    exit: 2,
    stderr: () => /^broker: unknown option '--bogus'$/,
  },
  {
    what: 'migrate: an unknown option',
    args: ['migrate', '--bogus'],
    exit: 2,
    stderr: () => /^broker: unknown option '--bogus'$/,
  },
  {
    what: 'token: a missing option',
    args: ['token', '--shop', 's'],
    exit: 2,
    stderr: () => /^broker: required option '--client <client_id>' not specified$/,
  },
  {
    what: 'token: a bad type',
    args: ['token', '--shop', 's', '--client', 'c', '--type', 'boss'],
    exit: 2,
    stderr: () => /^broker token: --type is main, sub/,
  },
  {
    what: 'token: a bad shop id',
    args: ['token', '--shop', 'a b', '--client', 'c', '--type', 'main'],
    exit: 2,
    stderr: () => /^broker token: --shop and --client take/,
  },
  {
    what: 'replay: a bad --since',
    args: ['replay', '--since', 'yesterday'],
    exit: 2,
    stderr: () => /^broker replay: --since takes an ISO 8601 time .*\(got "yesterday"\)$/,
  },
  {
    what: 'replay: a bad --until',
    args: ['replay', '--until', '2025-13-45'],
    exit: 2,
    stderr: () => /^broker replay: --until takes an ISO 8601 time/,
  },
  {
    what: 'replay: --since after --until',
    args: ['replay', '--since', '2025-03-02', '--until', '2025-03-01'],
    exit: 2,
    stderr: () => /^broker replay: --since must be before --until$/,
  },
  {
    what: 'replay: a bad --from',
    args: ['replay', '--from', 'xyz'],
    exit: 2,
    stderr: () => /^broker replay: --from takes an event id/,
  },
  {
    what: 'replay: an unknown --type',
    args: ['replay', '--type', 'Nope'],
    exit: 2,
    stderr: () => /^broker replay: --type: unknown event type "Nope"/,
  },
  {
    what: 'replay: a bad --format',
    args: ['replay', '--format', 'xml'],
    exit: 2,
    stderr: () => /^broker replay: --format is json or table/,
  },
  {
    what: 'replay: an unknown option',
    args: ['replay', '--bogus'],
    exit: 2,
    stderr: () => /^broker: unknown option '--bogus'$/,
  },
  {
    what: 'audit: a bad --shop',
    args: ['audit', '--shop', 'a/b'],
    exit: 2,
    stderr: () => /^broker audit: --shop takes 1-64 of/,
  },
  {
    what: 'audit: a bad --max-differences',
    args: ['audit', '--max-differences', '-1'],
    exit: 2,
    stderr: () => /^broker audit: --max-differences takes an integer/,
  },
  {
    what: 'rebuild: no --into',
    args: ['rebuild'],
    exit: 2,
    stderr: () => /^broker: required option '--into <database_url>' not specified$/,
  },
  {
    what: 'rebuild: --into not a database URL',
    args: ['rebuild', '--into', 'mysql://x/y'],
    exit: 2,
    stderr: () => /^broker rebuild: --into takes a database URL/,
  },
  {
    what: 'rebuild: a bad --batch',
    args: ['rebuild', '--into', 'postgres://127.0.0.1/x', '--batch', '0'],
    exit: 2,
    stderr: () => /^broker rebuild: --batch takes an integer/,
  },
  {
    what: 'a bad configuration variable',
    args: ['audit'],
    env: () => ({ SHARDS: 'abc' }),
    exit: 2,
    stderr: () => /^broker: configuration error: SHARDS: /,
  },

  // Conflicts: a database that is not the broker's, or not empty.
  ...(['replay', 'audit'] as const).flatMap((command): Case[] => [
    {
      what: `${command}: another application's database`,
      args: [command],
      env: () => ({ DATABASE_URL: otherApp }),
      exit: 2,
      stderr: () =>
        new RegExp(
          `^broker ${command}: ${quoted(otherApp)} is not the broker's database \\(column "\\w+" does not exist\\)$`,
        ),
    },
    {
      what: `${command}: a database without the schema`,
      args: [command],
      env: () => ({ DATABASE_URL: noSchema }),
      exit: 2,
      stderr: () =>
        new RegExp(
          `^broker ${command}: no broker schema in ${quoted(noSchema)} \\(run \`broker migrate\`\\?\\)$`,
        ),
    },
    {
      what: `${command}: no such database`,
      args: [command],
      env: () => ({ DATABASE_URL: NO_SUCH_DB() }),
      exit: 2,
      stderr: () => new RegExp(`^broker ${command}: no database at ${quoted(NO_SUCH_DB())}$`),
    },
  ]),
  {
    what: "rebuild: history from another application's database",
    args: ['rebuild', '--into', `postgres://127.0.0.1/none`],
    env: () => ({ DATABASE_URL: otherApp }),
    exit: 2,
    stderr: () => /^broker rebuild: .* is not the broker's database/,
  },
  {
    what: "rebuild: into another application's database",
    args: ['rebuild', '--into', 'OTHER'],
    exit: 2,
    stderr: () =>
      /^broker rebuild: .*_other_app is not the broker's database \(column "shop_id" does not exist\)$/,
  },
  {
    what: 'rebuild: into a database that is not empty',
    args: ['rebuild', '--into', 'NOT_EMPTY'],
    exit: 2,
    stderr: () => /^broker rebuild: .*_not_empty is not empty; .* --force/,
  },
  {
    what: "migrate: another application's database",
    args: ['migrate'],
    env: () => ({ DATABASE_URL: otherApp }),
    exit: 2,
    stderr: () =>
      /^broker migrate: .*_other_app is not the broker's database \(column "shop_id" does not exist\)$/,
  },
  {
    // A service waits for PostgreSQL to come back, but not for a database of another shape.
    what: "start: another application's database",
    args: ['start', 'persister'],
    env: () => ({ DATABASE_URL: otherApp }),
    exit: 2,
    stderr: () => /^broker: .*_other_app is not the broker's database \(column "shop_id" does not exist\)$/,
  },
  {
    what: 'token: a device already registered',
    args: ['token', '--shop', 'shop-1', '--client', 'taken', '--type', 'main'],
    exit: 2,
    stderr: () =>
      /^broker: .*already registered.*\(for a new token of this device add --rotate; or pick another --client\)$/,
  },
  {
    what: 'token --rotate: a device not registered',
    args: ['token', '--shop', 'shop-1', '--client', 'nobody', '--rotate'],
    exit: 2,
    stderr: () => /^broker: device nobody is not registered in shop shop-1/,
  },

  // Dependencies unreachable: given up on after a few seconds, not retried forever.
  {
    what: 'migrate: PostgreSQL unreachable',
    args: ['migrate'],
    env: CLOSED_POSTGRES,
    exit: 3,
    stderr: () =>
      /^broker migrate: PostgreSQL unreachable at postgres:\/\/postgres@127\.0\.0\.1:\d+\/broker .*gave up after 5 s/,
  },
  {
    what: 'token: Redis unreachable',
    args: ['token', '--shop', 'shop-1', '--client', 'c-9', '--type', 'sub'],
    env: CLOSED_REDIS,
    exit: 3,
    stderr: () =>
      /^broker: Redis unreachable at redis:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); gave up after 5 s, nothing was recorded/,
  },
  {
    what: 'audit: Redis unreachable',
    args: ['audit'],
    env: CLOSED_REDIS,
    exit: 3,
    stderr: () => /^broker audit: Redis unreachable at redis:\/\/127\.0\.0\.1:\d+ .*gave up after 5 s/,
  },
];

/** Placeholders for URLs known only once the databases exist. */
function argsOf(c: Case): string[] {
  return c.args.map((arg) => (arg === 'OTHER' ? otherApp : arg === 'NOT_EMPTY' ? notEmpty : arg));
}

describe('when a command fails for an expected reason', () => {
  beforeAll(async () => {
    const first = await runBroker(ctx, ['token', '--shop', 'shop-1', '--client', 'taken', '--type', 'main']);
    expect(first.code).toBe(0);
  });

  it.each(CASES.map((c) => [c.what, c] as const))(
    '%s: one line on stderr, nothing on stdout, the exit code',
    async (_, c) => {
      const run = await runBroker(ctx, argsOf(c), c.env?.() ?? {});
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr.trimEnd()).toMatch(c.stderr());
      expect(run.code).toBe(c.exit);
    },
    20_000,
  );
});
