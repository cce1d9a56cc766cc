// Replay, audit and rebuild give up after a few seconds when Redis or PostgreSQL is unreachable: one line naming
// the URL, no stack trace, a non-zero exit (3), instead of retrying forever like a service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '#runtime';
import { createTestContext, type TestContext, unusedPort } from '#test-support';
import { runBroker } from './harness';

let ctx: TestContext;
let closedPort: number;

beforeAll(async () => {
  ctx = await createTestContext();
  await (await connectPostgres(ctx.databaseUrl, ctx.log)).end(); // the source exists: rebuild fails on its target
  closedPort = await unusedPort();
});
afterAll(async () => {
  await ctx.cleanup();
});

function expectOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('when a dependency cannot be reached', () => {
  it('each command names the URL it tried and exits 3', async () => {
    const redisUrl = `redis://127.0.0.1:${closedPort}`;
    const databaseUrl = `postgres://postgres@127.0.0.1:${closedPort}/broker`;
    const [replay, audit, rebuild] = await Promise.all([
      runBroker(ctx, ['replay'], { REDIS_URL: redisUrl }),
      runBroker(ctx, ['audit'], { DATABASE_URL: databaseUrl }),
      runBroker(ctx, ['rebuild', '--into', databaseUrl]),
    ]);
    expectOneLine(
      replay.stderr,
      new RegExp(
        `^broker replay: Redis unreachable at ${redisUrl} \\(.*ECONNREFUSED.*\\); gave up after 5 s`,
      ),
    );
    expect(replay.code).toBe(3);
    expectOneLine(
      audit.stderr,
      new RegExp(`^broker audit: PostgreSQL unreachable at ${databaseUrl} \\(.*ECONNREFUSED`),
    );
    expect(audit.code).toBe(3);
    expectOneLine(rebuild.stderr, new RegExp(`^broker rebuild: PostgreSQL unreachable at ${databaseUrl}`));
    expect(rebuild.code).toBe(3);
  }, 120_000); // three CLI processes at once, each waiting out its deadline
});
