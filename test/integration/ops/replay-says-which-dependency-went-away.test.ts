// A dependency that goes away while a command runs is named in one line (exit 3), not a stack trace: here Redis
// is cut (through a TCP proxy) while `broker replay` is blocked writing to a reader that has not read yet.

import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { appendAll, shopsLog } from './harness';

let ctx: TestContext;
let proxy: TcpProxy;

beforeAll(async () => {
  ctx = await createTestContext({ SHARDS: '1' });
  await (await connectPostgres(ctx.databaseUrl, ctx.log)).end();
  await appendAll(ctx.redis, ctx.keys, shopsLog(400)); // several pages of one stream
  const redis = new URL(ctx.env.REDIS_URL!);
  proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
});
afterAll(async () => {
  await proxy.close();
  await ctx.cleanup();
});

describe('when Redis goes away during a replay', () => {
  it('names the Redis it lost and exits 3', async () => {
    const redisUrl = `redis://127.0.0.1:${proxy.port}`;
    const child = spawn(
      process.execPath,
      [new URL('../../../bin/broker.mjs', import.meta.url).pathname, 'replay'],
      {
        env: { PATH: process.env.PATH, ...ctx.env, REDIS_URL: redisUrl } as NodeJS.ProcessEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Output waiting in the pipe: the first page is read and the replay is held by backpressure. Cut, then read.
    await new Promise((resolve) => child.stdout.once('readable', resolve));
    proxy.cut();
    let lines = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 10) lines++;
    });

    expect(await exited).toBe(3);
    expect(stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^broker replay: lost Redis at ${redisUrl} \\(`)),
    ]);
    expect(lines).toBeGreaterThan(0);
    expect(lines).toBeLessThan(shopsLog(400).length);
  });
});
