// `broker audit` after token rotations made through the running api: the persister keeps the device (its
// registration, type and pending messages) with the newest token id, and the fold of the log agrees with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startEdge } from '#edge';
import { start as startPersister } from '#persister';
import { connectPostgres } from '#runtime';
import { createTestContext, loginRaw, type TestContext, tokenIdOf, waitFor, within } from '#test-support';
import { type Api, eventsOf, startTestApi } from '../api/harness';
import { parseLines, runBroker } from './harness';

const SHOP = 'shop-audit-rot';

let ctx: TestContext;
let api: Api;
let edge: Awaited<ReturnType<typeof startEdge>>;
let persister: Awaited<ReturnType<typeof startPersister>>;

beforeAll(async () => {
  ctx = await createTestContext();
  api = await startTestApi(ctx);
  edge = await startEdge(ctx.config, { log: ctx.log });
  persister = await startPersister(ctx.config, { log: ctx.log, healthServer: false });
});
afterAll(async () => {
  await api?.handle.stop();
  await edge?.stop();
  await persister?.stop();
  await ctx?.cleanup();
});

describe('when a connected main has its token rotated twice with messages pending', () => {
  it('projects the device with the newest token, keeps its messages pending, and audit passes', async () => {
    const register = (client_id: string, type: string) =>
      api.request('POST', `/v1/shops/${SHOP}/devices`, { body: { client_id, type } });
    const main = await register('pos-1', 'main');
    await register('waiter-1', 'sub');
    const socket = await loginRaw(`ws://127.0.0.1:${edge.port}/ws`, main.body.token as string);
    for (const table of [1, 2]) {
      const notify = await api.request('POST', `/v1/shops/${SHOP}/notify`, {
        body: { from_client_id: 'waiter-1', req_id: `r-${table}`, table_id: table, type: 'add_dish' },
      });
      expect(notify.status).toBe(202);
    }
    expect((await api.request('POST', `/v1/shops/${SHOP}/devices/pos-1/token`)).status).toBe(201);
    const latest = await api.request('POST', `/v1/shops/${SHOP}/devices/pos-1/token`);
    expect(latest.status).toBe(201);
    expect((await within(socket.closed, { timeoutMs: 1000, what: 'old socket closed' })).code).toBe(4403);
    await waitFor(async () => (await eventsOf(ctx, SHOP)).some((e) => e.type === 'ConnectionClosed'), {
      what: 'the old socket recorded closed',
    });
    await persister.whenCaughtUp();

    const pool = await connectPostgres(ctx.databaseUrl, ctx.log);
    try {
      const devices = await pool.query(
        'SELECT token_id, registered_at, revoked_at, token_rotated_at FROM devices WHERE shop_id = $1 AND client_id = $2',
        [SHOP, 'pos-1'],
      );
      expect(devices.rows).toEqual([
        {
          token_id: tokenIdOf(latest.body.token as string),
          registered_at: new Date(main.body.registered_at as string),
          revoked_at: null,
          token_rotated_at: expect.any(Date),
        },
      ]);
      const pending = await pool.query(
        "SELECT count(*)::int AS n FROM messages WHERE to_client_id = 'pos-1' AND state = 'pending'",
      );
      expect(pending.rows).toEqual([{ n: 2 }]);
    } finally {
      await pool.end();
    }

    const audit = await runBroker(ctx, ['audit', '--shop', SHOP]);
    expect(audit.stdout).toMatch(/^audit \(shop shop-audit-rot\): \d+ events folded, .* 0 differences\n$/);
    expect(audit.code).toBe(0);

    const replay = await runBroker(ctx, ['replay', '--shop', SHOP, '--type', 'DeviceTokenRotated']);
    expect(replay.code).toBe(0);
    expect(parseLines(replay.stdout).map((e) => e.data)).toEqual([
      { client_id: 'pos-1', token_id: expect.any(String) },
      { client_id: 'pos-1', token_id: tokenIdOf(latest.body.token as string) },
    ]);
  });
});
