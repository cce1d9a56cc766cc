// `broker audit` audits shop by shop: at any moment it holds one shop's fold and one shop's rows, never the whole
// tables, so its memory does not grow with the log. `--shop` audits one shop alone, and a shop known only from
// its rows (no event explains them) is audited too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type Pool } from '#runtime';
import { createTestContext, type TestContext } from '#test-support';
import { auditByShop, type ShopAudit } from '../../../cli/src/commands/audit-by-shop';
import { busyShopOps, shopLog } from '../../support/shop-log';
import {
  type Appended,
  appendAll,
  appendAndProject,
  runBroker,
  SHOPS,
  shopsLog,
  trimOlderHalf,
} from './harness';

let ctx: TestContext;
let pool: Pool;
let appended: Appended[];

beforeAll(async () => {
  ctx = await createTestContext({ CONSUMER_BATCH: '17' });
  appended = await appendAndProject(ctx, shopsLog(12));
  await trimOlderHalf(ctx, appended);
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool?.end();
  await ctx?.cleanup();
});

const TABLES = ['events', 'devices', 'connections', 'messages'] as const;

function shopsOfRows(audit: ShopAudit): Set<string> {
  const shops = new Set<string>();
  for (const view of [audit.expected, audit.found]) {
    for (const table of TABLES) for (const row of view[table].values()) shops.add(row.shop_id);
  }
  return shops;
}

async function rowsOf(shopId?: string): Promise<number> {
  let n = 0;
  for (const table of TABLES) {
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM ${table} WHERE $1::text IS NULL OR shop_id = $1`,
      [shopId ?? null],
    );
    n += rows[0].n as number;
  }
  return n;
}

describe('when the whole log is audited', () => {
  it("holds one shop's fold and rows at a time, never the whole tables", async () => {
    const audits: Array<{ shopId: string; shops: Set<string>; found: number; expected: number }> = [];
    const totals = await auditByShop(
      { redis: ctx.redis, db: pool, keys: ctx.keys },
      {
        onShop: (audit) => {
          const size = (view: ShopAudit['found']) => TABLES.reduce((n, t) => n + view[t].size, 0);
          audits.push({
            shopId: audit.shopId,
            shops: shopsOfRows(audit),
            found: size(audit.found),
            expected: size(audit.expected),
          });
        },
      },
    );
    expect(audits.map((a) => a.shopId).sort()).toEqual([...SHOPS].sort());
    for (const audit of audits) {
      expect(audit.shops).toEqual(new Set([audit.shopId]));
      expect(audit.found).toBe(await rowsOf(audit.shopId));
      expect(audit.expected).toBe(audit.found);
    }
    const total = await rowsOf();
    expect(Math.max(...audits.map((a) => a.found))).toBeLessThan(total / 2);
    expect(totals).toMatchObject({ shops: SHOPS.length, folded: appended.length, differences: 0 });
  });
});

describe('when one shop is damaged', () => {
  it('--shop fails that shop alone, and passes another', async () => {
    const { rows } = await pool.query(
      `SELECT id FROM messages WHERE shop_id = 'shop-b' AND state = 'delivered' LIMIT 1`,
    );
    const id = rows[0].id as string;
    await pool.query(`UPDATE messages SET attempts = attempts + 5 WHERE id = $1`, [id]);
    try {
      const [b, c] = await Promise.all([
        runBroker(ctx, ['audit', '--shop', 'shop-b']),
        runBroker(ctx, ['audit', '--shop', 'shop-c']),
      ]);
      expect(b.stdout).toMatch(
        new RegExp(`^messages: message ${id}: attempts: expected \\d+, found \\d+\\n`),
      );
      expect(b.stdout).toMatch(/^audit \(shop shop-b\): \d+ events folded, .* 1 difference\n$/m);
      expect(b.code).toBe(1);
      const shopC = appended.filter((a) => a.event.shop_id === 'shop-c').length;
      expect(c.stdout).toMatch(
        new RegExp(
          `^audit \\(shop shop-c\\): ${shopC} events folded, \\d+ rows compared, .* 0 differences\\n$`,
        ),
      );
      expect(c.code).toBe(0);
    } finally {
      await pool.query(`UPDATE messages SET attempts = attempts - 5 WHERE id = $1`, [id]);
    }
  });
});

describe('when a shop has rows but no events', () => {
  it('audits it too and names its rows as unexpected', async () => {
    await pool.query(
      `INSERT INTO devices (shop_id, client_id, type, token_id, registered_at)
       VALUES ('shop-ghost', 'pos-1', 'main', 'tok-ghost', now())`,
    );
    try {
      const run = await runBroker(ctx, ['audit']);
      expect(run.stdout).toContain(
        'devices: device shop-ghost/pos-1: unexpected (no event up to the checkpoint explains it)\n',
      );
      expect(run.stdout).toMatch(/, 1 difference\n$/);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
    } finally {
      await pool.query(`DELETE FROM devices WHERE shop_id = 'shop-ghost'`);
    }
  });
});

describe('when a new shop has events the persister has not projected yet', () => {
  it('finds the shop in the stream and counts its events as not yet projected', async () => {
    const later = shopLog(busyShopOps(3), { shopId: 'shop-new', startMs: Date.UTC(2025, 2, 3) });
    await appendAll(ctx.redis, ctx.keys, later);
    const run = await runBroker(ctx, ['audit', '--shop', 'shop-new']);
    expect(run.stdout).toBe(
      `audit (shop shop-new): 0 events folded, 0 rows compared, ${later.length} not yet projected, 0 differences\n`,
    );
    expect(run.code).toBe(0);
    const all = await runBroker(ctx, ['audit']);
    expect(all.stdout).toMatch(new RegExp(`, ${later.length} not yet projected, 0 differences\n$`));
    expect(all.code).toBe(0);
  });
});
