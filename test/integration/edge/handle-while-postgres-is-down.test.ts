// The edge needs Redis only (SPEC §6): with PostgreSQL unreachable it stays ready and keeps taking notifies and
// acks; only `handle`, which reads the projections (SPEC §10), answers 503 and records nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startEdge } from '#edge';
import { createTestContext, loginRaw, readLog, registerDevice, type TestContext } from '#test-support';

describe('when PostgreSQL is unreachable from the edge', () => {
  let ctx: TestContext;
  let edge: Awaited<ReturnType<typeof startEdge>>;

  beforeAll(async () => {
    ctx = await createTestContext({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    edge = await startEdge(ctx.config, { log: ctx.log });
  });
  afterAll(async () => {
    await edge?.stop();
    await ctx?.cleanup();
  });

  it('answers a handle 503 and stays ready for everything else', async () => {
    const url = `ws://127.0.0.1:${edge.port}/ws`;
    const main = await loginRaw(url, await registerDevice(ctx, 'no-pg', 'cashier', 'main'));
    const waiter = await loginRaw(url, await registerDevice(ctx, 'no-pg', 'waiter', 'sub'));
    waiter.send({ op: 'notify', req_id: 'n', table_id: 1, type: 'gift', data: {} });
    const reply = await waiter.next((f) => f.op === 'notify');
    expect(reply).toMatchObject({ code: 0 });
    const eventId = (reply.data as { event_id: string }).event_id;

    main.send({ op: 'handle', id: `${eventId}.cashier`, status: 1, req_id: 'h' });
    expect(await main.next((f) => f.op === 'handle')).toMatchObject({
      code: 503,
      msg: expect.stringContaining('unavailable'),
      req_id: 'h',
    });
    expect(await readLog(ctx, 'MessageHandled')).toHaveLength(0);
    expect((await fetch(`http://127.0.0.1:${edge.port}/readyz`)).status).toBe(200);
    main.send({ op: 'ping', req_id: 'p' });
    expect(await main.next((f) => f.op === 'pong')).toMatchObject({ code: 0 });
    main.ws.close();
    waiter.ws.close();
  });
});
