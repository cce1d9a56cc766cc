// SPEC §7: `TOKEN=$(broker token …)` holds the token alone — logs and warnings go to stderr — and a device that is
// already registered is one line on stderr and exit code 2, never a stack trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '#test-support';
import { runBroker } from './harness';

const TOKEN = /^[\w-]+\.[\w-]+\.[\w-]+$/;

describe('broker token', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('writes only the token to stdout, and the development warnings to stderr', async () => {
    // No API_KEYS and no DEVICE_TOKEN_SECRET: the development defaults are used, and each says so.
    const run = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'c1', '--type', 'main'], {
      API_KEYS: '',
      DEVICE_TOKEN_SECRET: '',
      LOG_LEVEL: 'info',
    });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(TOKEN);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/API_KEYS/);
  });

  it('refuses a device already registered in one line with exit code 2', async () => {
    const first = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'c2', '--type', 'sub']);
    expect(first.code).toBe(0);
    const again = await runBroker(ctx, ['token', '--shop', 's1', '--client', 'c2', '--type', 'sub']);
    expect(again.code).toBe(2);
    expect(again.stdout).toBe('');
    const lines = again.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /^broker: device c2 is already registered \(for a new token of this device add --rotate/,
    );
    expect(again.stderr).not.toMatch(/\n\s+at /);
  });
});
