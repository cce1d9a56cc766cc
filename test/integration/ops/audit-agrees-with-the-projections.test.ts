// `broker audit` after a realistic run of the real persister: the fold of the log (archive and streams) agrees
// with PostgreSQL, and events the persister has not committed yet are counted, not failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '#test-support';
import { type Appended, appendAll, appendAndProject, runBroker, shopsLog, trimOlderHalf } from './harness';

let ctx: TestContext;
let projected: Appended[];

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '13' });
  projected = await appendAndProject(ctx, shopsLog(15));
  await trimOlderHalf(ctx, projected);
});
afterAll(async () => {
  await ctx.cleanup();
});

describe('when the persister has projected the whole log', () => {
  it('exits 0 and says how much it folded and compared', async () => {
    const run = await runBroker(ctx, ['audit']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(
      new RegExp(
        `^audit: ${projected.length} events folded, \\d+ rows compared, 0 not yet projected, 0 differences\\n$`,
      ),
    );
    expect(run.code).toBe(0);
  });
});

describe('when events were appended after the persister stopped', () => {
  it('counts them as not yet projected and still exits 0', async () => {
    const later = shopsLog(2, Date.UTC(2025, 2, 2)); // a day later: new event ids
    await appendAll(ctx.redis, ctx.keys, later);
    const run = await runBroker(ctx, ['audit']);
    expect(run.stdout).toContain(`${projected.length} events folded`);
    expect(run.stdout).toContain(`${later.length} not yet projected, 0 differences`);
    expect(run.code).toBe(0);
  });

  it("audits one shop's rows alone", async () => {
    const shopB = projected.filter((a) => a.event.shop_id === 'shop-b').length;
    const run = await runBroker(ctx, ['audit', '--shop', 'shop-b']);
    expect(run.stdout).toMatch(
      new RegExp(`^audit \\(shop shop-b\\): ${shopB} events folded, .* 0 differences\\n$`),
    );
    expect(run.code).toBe(0);
  });
});
