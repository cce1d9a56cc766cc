// SPEC §7: `broker token --rotate` gives a registered device a new token and prints only that token, so
// `TOKEN=$(broker token --rotate …)` holds it alone; the old token's socket is closed with 4403. A device that is
// not registered is one line on stderr and exit code 2, never a stack trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startEdge } from '#edge';
import { createTestContext, loginRaw, openRaw, type TestContext, tokenIdOf, within } from '#test-support';
import { runBroker } from './harness';

const TOKEN = /^[\w-]+\.[\w-]+\.[\w-]+$/;

describe('broker token --rotate', () => {
  let ctx: TestContext;
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let url: string;

  beforeAll(async () => {
    ctx = await createTestContext();
    edge = await startEdge(ctx.config, { log: ctx.log });
    url = `ws://127.0.0.1:${edge.port}/ws`;
  });
  afterAll(async () => {
    await edge?.stop();
    await ctx?.cleanup();
  });

  it('writes only the new token to stdout and closes the old socket with 4403', async () => {
    const registered = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'pos-1', '--type', 'main']);
    expect(registered.code).toBe(0);
    const oldToken = registered.stdout.trim();
    const oldSocket = await loginRaw(url, oldToken);

    const run = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'pos-1', '--rotate'], {
      LOG_LEVEL: 'info',
    });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(TOKEN);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const newToken = run.stdout.trim();
    expect(tokenIdOf(newToken)).not.toBe(tokenIdOf(oldToken));
    expect((await within(oldSocket.closed, { timeoutMs: 1000, what: 'old socket closed' })).code).toBe(4403);

    const again = await openRaw(url);
    again.send({ op: 'login', token: oldToken });
    expect(await again.next((f) => f.op === 'login')).toMatchObject({ code: 401 });
    (await loginRaw(url, newToken)).ws.close();
  });

  it('refuses a device that is not registered in one line with exit code 2', async () => {
    const run = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'ghost', '--rotate']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /^broker: device ghost is not registered in shop s1 \(register it: broker token/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses --type beside --rotate, since the device keeps its registered type', async () => {
    const run = await runBroker(ctx, [
      'token',
      '--shop',
      's1',
      '--client',
      'pos-1',
      '--type',
      'sub',
      '--rotate',
    ]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('broker token: --rotate keeps the registered type; leave out --type\n');
  });
});
