// SPEC §10: killing any process between a handle and its notices loses no notice. The notice is filed in Redis and
// pushed in the same step as the MessageHandled (handle-7.lua), so it needs no dispatcher; one whose push reached no
// edge is named in the entry for the dispatcher to retry, and a dispatcher killed (SIGKILL) before it did leaves
// it to the next; an edge killed under the other cashier after it took the push, before writing it, leaves the
// notice to that cashier's next login.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startEdge } from '#edge';
import { start as startPersister } from '#persister';
import {
  createTestContext,
  loginRaw,
  type RawSocket,
  registerDevice,
  type SpawnedService,
  spawnService,
  type TestContext,
  waitFor,
  waitForLog,
} from '#test-support';

describe('a handled notice, when a process dies between the handle and the notice', () => {
  let ctx: TestContext;
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let persister: Awaited<ReturnType<typeof startPersister>>;
  const spawned: SpawnedService[] = [];
  const url = (port: number) => `ws://127.0.0.1:${port}/ws`;

  beforeAll(async () => {
    ctx = await createTestContext({ DELIVERY_RETRY_FIRST_MS: '200', DELIVERY_RETRY_MAX_MS: '800' });
    persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
    edge = await startEdge(
      { ...ctx.config, edge: { ...ctx.config.edge, id: 'edge-stays' } },
      { log: ctx.log },
    );
  });
  afterAll(async () => {
    for (const service of spawned) await service.kill();
    await edge?.stop();
    await persister?.stop();
    await ctx?.cleanup();
  });

  function spawn(service: string, env: Record<string, string> = {}): SpawnedService {
    const child = spawnService(service, { ...ctx.env, LOG_LEVEL: 'info', ...env });
    spawned.push(child);
    return child;
  }

  /** A shop with two cashiers and a waiter online on `port`s; one notify, delivered and acked by both. */
  async function handledLater(shopId: string, bPort: number) {
    const [a, waiter] = await Promise.all([
      loginRaw(url(edge.port), await registerDevice(ctx, shopId, 'cashier-a', 'main')),
      loginRaw(url(edge.port), await registerDevice(ctx, shopId, 'waiter', 'sub')),
    ]);
    const bToken = await registerDevice(ctx, shopId, 'cashier-b', 'main');
    const b = await loginRaw(url(bPort), bToken);
    waiter.send({ op: 'notify', req_id: 'r', table_id: 7, type: 'discount', data: { pct: 10 } });
    const [ma, mb] = await Promise.all([
      a.next((f) => f.op === 'message'),
      b.next((f) => f.op === 'message'),
    ]);
    a.send({ op: 'ack', id: ma.id });
    b.send({ op: 'ack', id: mb.id });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox(shopId))) === 0, { what: 'both acked' });
    return { a, b, waiter, bToken, aCopy: String(ma.id), bCopy: String(mb.id) };
  }

  async function handle(socket: RawSocket, id: string) {
    socket.send({ op: 'handle', id, status: 3, req_id: 'h' });
    expect(await socket.next((f) => f.op === 'handle')).toMatchObject({ code: 0 });
  }

  it('gets the notice from the handle itself with no dispatcher running', async () => {
    const { a, b, waiter, bCopy, aCopy } = await handledLater('no-dispatcher', edge.port);
    await handle(a, aCopy); // pushed by the handle script (handle-7.lua): no dispatcher runs at all
    expect(await b.next((f) => f.op === 'handled')).toMatchObject({
      id: bCopy,
      handled_by: { kind: 'device', client_id: 'cashier-a' },
      status: 3,
    });
    for (const s of [a, b, waiter]) s.ws.close();
  });

  it('gets a notice whose push reached no edge from the next dispatcher, when the first was killed before it retried it', async () => {
    const doomed = spawn('dispatcher');
    await waitForLog(doomed, 'dispatcher started');
    const { a, b, waiter, bCopy, aCopy } = await handledLater('kill-dispatcher', edge.port);
    await doomed.kill('SIGKILL');
    // The handle's push goes to an edge nobody runs: only a dispatcher's retry can bring it now.
    const presence = ctx.keys.presence('kill-dispatcher');
    const listed = (await ctx.redis.hget(presence, 'cashier-b'))!;
    await ctx.redis.hset(
      presence,
      'cashier-b',
      JSON.stringify({ ...JSON.parse(listed), edge_id: 'edge-gone' }),
    );
    await handle(a, aCopy);
    await ctx.redis.hset(presence, 'cashier-b', listed);
    const next = spawn('dispatcher');
    await waitForLog(next, 'dispatcher started');
    expect(await b.next((f) => f.op === 'handled', 15_000)).toMatchObject({
      id: bCopy,
      handled_by: { kind: 'device', client_id: 'cashier-a' },
      status: 3,
    });
    expect(b.frames.filter((f) => f.op === 'handled')).toHaveLength(1);
    for (const s of [a, b, waiter]) s.ws.close();
    await next.kill('SIGTERM');
  });

  it('gets the notice at its next login when the edge holding it took the push and was killed before writing it', async () => {
    const dispatcher = spawn('dispatcher');
    await waitForLog(dispatcher, 'dispatcher started');
    const doomedEdge = spawn('edge', { EDGE_ID: 'edge-doomed', EDGE_PORT: '0' });
    await waitForLog(doomedEdge, 'edge listening');
    const port = Number(/"port":(\d+)[^\n]*"msg":"edge listening"/.exec(doomedEdge.output())?.[1]);
    const { a, b, waiter, bToken, bCopy, aCopy } = await handledLater('kill-edge', port);
    // Frozen, the edge still holds its subscription: the handle's push is taken (SPUBLISH counts it) and never
    // written. Nothing names it for a retry, so only the next login can bring it.
    doomedEdge.child.kill('SIGSTOP');
    await handle(a, aCopy);
    const stream = ctx.keys.streamOfShop('kill-edge');
    const [[, fields] = ['', []]] = await ctx.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    expect(fields.slice(0, 2)).toEqual(['t', 'MessageHandled']);
    // Reached an edge: no retry is scheduled, on a Redis Cluster too (SPUBLISH counts the shard's subscribers).
    expect(fields[fields.indexOf('u') + 1]).toBe('');
    await doomedEdge.kill('SIGKILL');
    await b.closed;
    expect(b.frames.filter((f) => f.op === 'handled')).toEqual([]);
    // The cashier's device reconnects, through the balancer, to the edge still running.
    const again = await loginRaw(url(edge.port), bToken);
    expect(await again.next((f) => f.op === 'handled', 15_000)).toMatchObject({
      id: bCopy,
      handled_by: { kind: 'device', client_id: 'cashier-a' },
    });
    again.send({ op: 'ack', handled: [bCopy] });
    await waitFor(async () => (await ctx.redis.hlen(ctx.keys.inbox('kill-edge'))) === 0, {
      what: 'the notice acked',
    });
    for (const s of [a, again, waiter]) s.ws.close();
    await dispatcher.kill('SIGTERM');
  });
});
