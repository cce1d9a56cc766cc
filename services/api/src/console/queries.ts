// The console's own reads of the PostgreSQL projections: aggregates per shop, the newest archived events of a
// shop, and the messages whose retries ran out. The /v1 reads (a shop's devices and messages, one message) are
// the api's own, imported from ../queries. Parameters only; the texts are constants.
import { type ArchivedEventRow, isTransientFailure } from '#eventlog';
import { BrokerError } from '#events';
import type { Pool } from '#runtime';

/** Runs one query; PostgreSQL being away is DATABASE_UNAVAILABLE (503), anything else a fault. */
async function select<R>(pool: Pool, name: string, text: string, values: unknown[]): Promise<R[]> {
  try {
    return (await pool.query<R & Record<string, unknown>>({ name, text, values })).rows;
  } catch (err) {
    if (isTransientFailure(err)) throw new BrokerError('DATABASE_UNAVAILABLE');
    throw err;
  }
}

/** Shops that have had a device, whose id contains `search` (any case), in id order. */
export async function selectShopIds(pool: Pool, search: string, limit: number): Promise<string[]> {
  const rows = await select<{ shop_id: string }>(
    pool,
    'console-shop-ids',
    `SELECT DISTINCT shop_id FROM devices WHERE strpos(lower(shop_id), lower($1)) > 0
     ORDER BY shop_id LIMIT $2`,
    [search, limit],
  );
  return rows.map((row) => row.shop_id);
}

export interface ShopCounts {
  mains: number;
  subs: number;
  revoked: number;
  pending: number;
  oldest_pending_at: Date | null;
}

/** Active mains and subs, revoked devices and pending messages (with the oldest) of each listed shop. */
export async function selectShopCounts(
  pool: Pool,
  shopIds: readonly string[],
): Promise<Map<string, ShopCounts>> {
  const [devices, pending] = await Promise.all([
    select<{ shop_id: string; mains: string; subs: string; revoked: string }>(
      pool,
      'console-shop-devices',
      `SELECT shop_id,
         count(*) FILTER (WHERE revoked_at IS NULL AND type = 'main') AS mains,
         count(*) FILTER (WHERE revoked_at IS NULL AND type = 'sub') AS subs,
         count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked
       FROM devices WHERE shop_id = ANY($1::text[]) GROUP BY shop_id`,
      [shopIds],
    ),
    select<{ shop_id: string; pending: string; oldest: Date }>(
      pool,
      'console-shop-pending',
      `SELECT shop_id, count(*) AS pending, min(created_at) AS oldest
       FROM messages WHERE state = 'pending' AND shop_id = ANY($1::text[]) GROUP BY shop_id`,
      [shopIds],
    ),
  ]);
  const counts = new Map<string, ShopCounts>();
  for (const shopId of shopIds) {
    counts.set(shopId, { mains: 0, subs: 0, revoked: 0, pending: 0, oldest_pending_at: null });
  }
  for (const row of devices) {
    Object.assign(counts.get(row.shop_id)!, {
      mains: Number(row.mains),
      subs: Number(row.subs),
      revoked: Number(row.revoked),
    });
  }
  for (const row of pending) {
    Object.assign(counts.get(row.shop_id)!, { pending: Number(row.pending), oldest_pending_at: row.oldest });
  }
  return counts;
}

/** A shop's newest archived events, newest first (the shop's position index, walked backwards). */
export function selectRecentEvents(pool: Pool, shopId: string, limit: number): Promise<ArchivedEventRow[]> {
  return select(
    pool,
    'console-recent-events',
    `SELECT id, stream_ms, stream_seq, shop_id, type, v, at, source, data FROM events
     WHERE shop_id = $1 ORDER BY stream_ms DESC, stream_seq DESC LIMIT $2`,
    [shopId, limit],
  );
}

/** Messages whose retry budget ran out (DeliveryFailed) and that are still undelivered, newest failure first. */
export async function selectFailedMessages(
  pool: Pool,
  limit: number,
): Promise<{ total: number; items: Array<{ id: string; failed_at: Date }> }> {
  const rows = await select<{ id: string; failed_at: Date; total: string }>(
    pool,
    'console-failed-messages',
    `SELECT id, failed_at, count(*) OVER () AS total FROM messages
     WHERE failed_at IS NOT NULL AND state = 'pending' ORDER BY failed_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return {
    total: rows.length === 0 ? 0 : Number(rows[0]!.total),
    items: rows.map(({ id, failed_at }) => ({ id, failed_at })),
  };
}
