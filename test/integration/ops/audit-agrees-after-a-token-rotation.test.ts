// `broker audit` after token rotations made through the running api: the persister keeps the device (its
// registration, type and pending messages) with the newest token id, and the fold of the log agrees with it.
import { describe, expect, it } from 'vitest';
import { connectPostgres } from '#runtime';
import { brokerInProcess, loginRaw, shopEvents, tokenIdOf, waitFor, within } from '#test-support';
import { parseLines, runBroker } from './harness';

const SHOP = 'shop-audit-rot';

const broker = brokerInProcess({ api: true, edge: true, persister: true });

describe('when a connected main has its token rotated twice with messages pending', () => {
  it('projects the device with the newest token, keeps its messages pending, and audit passes', async () => {
    const register = (client_id: string, type: string) =>
      broker.api.request('POST', `/v1/shops/${SHOP}/devices`, { body: { client_id, type } });
    const main = await register('pos-1', 'main');
    await register('waiter-1', 'sub');
    const socket = await loginRaw(broker.wsUrl, main.body.token as string);
    for (const table of [1, 2]) {
      const notify = await broker.api.request('POST', `/v1/shops/${SHOP}/notify`, {
        body: { from_client_id: 'waiter-1', req_id: `r-${table}`, table_id: table, type: 'add_dish' },
      });
      expect(notify.status).toBe(202);
    }
    expect((await broker.api.request('POST', `/v1/shops/${SHOP}/devices/pos-1/token`)).status).toBe(201);
    const latest = await broker.api.request('POST', `/v1/shops/${SHOP}/devices/pos-1/token`);
    expect(latest.status).toBe(201);
    expect((await within(socket.closed, { timeoutMs: 1000, what: 'old socket closed' })).code).toBe(4403);
    await waitFor(
      async () => (await shopEvents(broker.ctx, SHOP)).some((e) => e.type === 'ConnectionClosed'),
      {
        what: 'the old socket recorded closed',
      },
    );
    await broker.persister.whenCaughtUp();

    const pool = await connectPostgres(broker.ctx.databaseUrl, broker.ctx.log);
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

    const audit = await runBroker(broker.ctx, ['audit', '--shop', SHOP]);
    expect(audit.stdout).toMatch(/^audit \(shop shop-audit-rot\): \d+ events folded, .* 0 differences\n$/);
    expect(audit.code).toBe(0);

    const replay = await runBroker(broker.ctx, ['replay', '--shop', SHOP, '--type', 'DeviceTokenRotated']);
    expect(replay.code).toBe(0);
    expect(parseLines(replay.stdout).map((e) => e.data)).toEqual([
      { client_id: 'pos-1', token_id: expect.any(String) },
      { client_id: 'pos-1', token_id: tokenIdOf(latest.body.token as string) },
    ]);
  });
});
