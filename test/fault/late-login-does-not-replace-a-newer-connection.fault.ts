// SPEC §3: a second login of the same device replaces the first, so a device is never online twice. Under
// faults the order of sockets and the order in which their logins reach Redis can disagree: a device whose login
// hangs (its edge's Redis path is slow) gives up, as the device client does after its login timeout, and logs
// in on another edge; the abandoned login then lands. The later socket is the device's live one and must keep
// its presence; the abandoned one must not close it (4409 is final for the device client: it would stay away).
//
// Found by this suite: the late login used to win (the dead socket became the presence and the live one was
// closed with 4409). login-6.lua (then login-3.lua) orders logins by connection id (time-ordered): a login never replaces a
// connection opened after its own, and the late one is refused with 4409 instead.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type EdgeHandle, start as startEdge } from '#edge';
import { loadConfig } from '#runtime';
import {
  createTestContext,
  loginRaw,
  openRaw,
  type RawSocket,
  readLog,
  registerDevice,
  type TestContext,
  waitFor,
} from '#test-support';
import { type Gate, startGate } from '../support/fault';

let ctx: TestContext;
let gate: Gate;
let slowEdge: EdgeHandle;
let otherEdge: EdgeHandle;

// The gate stands for one Redis node; a Redis Cluster redirects clients to its nodes' own addresses.
describe.skipIf(Boolean(inject('redisClusterNodes')))(
  'when a login abandoned by its device lands late',
  () => {
    beforeAll(async () => {
      ctx = await createTestContext();
      const redis = new URL(ctx.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
      gate = await startGate({ host: redis.hostname, port: Number(redis.port || 6379) });
      const gated = new URL(redis);
      gated.port = String(gate.port);
      const edgeConfig = (id: string, redisUrl: string) =>
        loadConfig({ ...ctx.env, EDGE_ID: `${ctx.env.REDIS_PREFIX}-${id}`, REDIS_URL: redisUrl }).config;
      slowEdge = await startEdge(edgeConfig('edge-a', gated.toString()), { log: ctx.log });
      otherEdge = await startEdge(edgeConfig('edge-b', redis.toString()), { log: ctx.log });
    });
    afterAll(async () => {
      gate?.open();
      await slowEdge?.stop();
      await otherEdge?.stop();
      await gate?.stop();
      await ctx?.cleanup();
    });

    it('the device keeps its newer connection on the other edge', async () => {
      const token = await registerDevice(ctx, 'late-login', 'm0', 'main');

      // The device dials edge-a and logs in; edge-a's Redis path hangs with the login's first write in it.
      const abandoned = await openRaw(`ws://127.0.0.1:${slowEdge.port}/ws`);
      gate.close();
      abandoned.send({ op: 'login', token });
      await waitFor(() => gate.heldBytes > 0, { what: "edge-a's login writes held on their way to Redis" });
      // The device gives up on that login (as the device client does after its login timeout) ...
      abandoned.ws.close();
      await abandoned.closed;
      // ... and logs in on edge-b at once; then edge-a's Redis path comes back and its login lands.
      const live = await loginRaw(`ws://127.0.0.1:${otherEdge.port}/ws`, token);
      const liveConnId = connIdOf(live);
      let liveClose: number | undefined;
      void live.closed.then(({ code }) => {
        liveClose = code;
      });
      gate.open();

      // A PING on edge-a's own connection answers after the held login script has run (one connection, FIFO).
      await waitFor(async () => (await slowEdge.readiness()).ready, { what: "edge-a's Redis path drained" });
      const lateLogins = (await readLog(ctx, 'DeviceLoggedIn')).filter(
        (e) =>
          e.shop_id === 'late-login' && e.type === 'DeviceLoggedIn' && e.data.edge_id === slowEdge.edgeId,
      );
      const lateConnId = `the abandoned socket (${lateLogins.length} login recorded)`;
      const presence = await ctx.redis.hget(ctx.keys.presence('late-login'), 'm0');
      live.send({ op: 'ping' });
      const answer = await live.next((frame) => frame.op === 'pong').catch((err: Error) => err.message);
      console.log(
        `[fault] late-login: abandoned ${lateConnId} on edge-a landed after live ${liveConnId} on edge-b; ` +
          `presence now ${presence ?? 'none'}; live socket ${liveClose ? `closed with ${liveClose}` : 'open'}; ping: ${
            typeof answer === 'string' ? answer : 'pong'
          }`,
      );
      expect(JSON.parse(presence ?? '{}')).toMatchObject({ conn_id: liveConnId });
      expect(liveClose).toBeUndefined();
      expect(lateLogins).toEqual([]);
      live.ws.close();
    });

    it('a login the edge gave up on (503) does not take the presence of the live connection', async () => {
      const token = await registerDevice(ctx, 'late-login-2', 'm0', 'main');

      // edge-a's login script is held on its way to Redis; edge-a times the command out and answers 503.
      const refused = await openRaw(`ws://127.0.0.1:${slowEdge.port}/ws`);
      gate.close('DeviceLoggedIn');
      refused.send({ op: 'login', token });
      const reply = await refused.next((frame) => frame.op === 'login', 10_000);
      expect(reply.code).toBe(503);
      // The device logs in on edge-b; then the held script reaches Redis.
      const live = await loginRaw(`ws://127.0.0.1:${otherEdge.port}/ws`, token);
      const liveConnId = connIdOf(live);
      gate.open();
      await waitFor(async () => (await slowEdge.readiness()).ready, { what: "edge-a's Redis path drained" });
      const refusedLogins = (await readLog(ctx, 'DeviceLoggedIn')).filter(
        (e) =>
          e.shop_id === 'late-login-2' && e.type === 'DeviceLoggedIn' && e.data.edge_id === slowEdge.edgeId,
      );
      const refusedConnId = refusedLogins.length > 0 ? 'recorded' : 'not recorded';
      const presence = await ctx.redis.hget(ctx.keys.presence('late-login-2'), 'm0');
      console.log(
        `[fault] late-login: login of ${refusedConnId} answered 503 by edge-a but recorded after live ` +
          `${liveConnId}; presence now ${presence ?? 'none'}`,
      );
      // The dispatcher routes by presence: pointing at the refused socket, the live device gets nothing.
      expect(JSON.parse(presence ?? '{}')).toMatchObject({ conn_id: liveConnId });
      expect(refusedLogins).toEqual([]);
      refused.ws.close();
      live.ws.close();
    });
  },
);

/** The conn_id of a socket's login reply (its first frame: loginRaw has checked it is a successful login). */
function connIdOf(socket: RawSocket): string {
  const data = socket.frames[0]?.data as { conn_id?: unknown } | undefined; // the login reply's data object
  return String(data?.conn_id);
}
