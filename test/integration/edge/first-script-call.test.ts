// The edge's first Lua call on its Redis client can share an auto-pipeline with any other command of the same
// tick. A script defined after that pipeline was opened is missing from it, and ioredis then throws an uncaught
// TypeError that ends the process (redis/ioredis#1931); EventLog defines its scripts when it is built.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '#eventlog';
import { createEvent } from '#events';
import { closeRedis, createRedis, type RedisClient, whenRedisReady } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';

describe("when the edge's first script call shares a pipeline with another command", () => {
  let ctx: TestContext;
  let client: RedisClient;
  const uncaught: Error[] = [];
  const onUncaught = (err: Error) => uncaught.push(err);
  beforeAll(async () => {
    ctx = await createTestContext();
    // The edge's settings: fail fast, auto-pipelining on.
    client = createRedis(ctx.config.redis, ctx.log, { name: 'first-script', failFast: true });
    await whenRedisReady(client);
    process.on('uncaughtException', onUncaught);
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await closeRedis(client);
    await ctx?.cleanup();
  });

  it('runs both, and nothing is thrown out of ioredis', async () => {
    const eventLog = new EventLog(client, ctx.keys);
    const listed = client.hset(ctx.keys.edgeConnections('e1'), 'c1', '{}'); // opens this tick's pipeline
    const closed = eventLog.recordClose(
      createEvent({
        type: 'ConnectionClosed',
        shopId: 'first',
        source: 'edge:e1',
        data: { client_id: 'm1', conn_id: 'c1', edge_id: 'e1', reason: 'closed' },
      }),
    );
    await expect(Promise.all([listed, closed])).resolves.toEqual([1, true]);
    await client.ping(); // one more round trip: an uncaught error would have surfaced by now
    expect(uncaught).toEqual([]);
  });
});
