// Every read the api makes of the PostgreSQL projections. Parameters only: the SQL texts below are built from
// constant fragments, never from input. The api never writes these tables; the persister does.

import { isTransientFailure } from '#eventlog';
import { BrokerError, type DeliveryVia, type DeviceType, type rest, type StreamPosition } from '#events';
import type { Pool } from '#runtime';

export interface DeviceRow {
  client_id: string;
  type: DeviceType;
  legacy: boolean;
  registered_at: Date;
  revoked_at: Date | null;
  last_seen_at: Date | null;
}

export interface MessageRow {
  id: string;
  event_id: string;
  shop_id: string;
  table_id: string | number | null;
  type: string;
  title: string;
  status: number;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
  from_client_id: string | null;
  to_client_id: string;
  state: rest.MessageView['state'];
  attempts: number;
  created_at: Date;
  delivered_at: Date | null;
  delivered_via: DeliveryVia | null;
  handled_at: Date | null;
  handled_by: rest.MessageView['handled_by'];
  /** created_at to the microsecond, as text: the exact keyset position of the row. */
  created_key: string;
}

const MESSAGE_COLUMNS = `id, event_id, shop_id, table_id, type, title, status, data, user_info, from_client_id,
  to_client_id, state, attempts, created_at, delivered_at, delivered_via, handled_at, handled_by,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key`;

/** Runs one query; PostgreSQL being away is DATABASE_UNAVAILABLE (503), anything else a fault. */
async function select<R>(pool: Pool, text: string, values: unknown[]): Promise<R[]> {
  try {
    const result = await pool.query(text, values);
    return result.rows as R[];
  } catch (err) {
    if (isTransientFailure(err)) throw new BrokerError('DATABASE_UNAVAILABLE');
    throw err;
  }
}

/** A shop's devices in client_id order, revoked ones included, `limit + 1` rows after `afterClientId`. */
export function selectDevices(
  pool: Pool,
  shopId: string,
  limit: number,
  afterClientId: string | null,
): Promise<DeviceRow[]> {
  const columns = 'client_id, type, legacy, registered_at, revoked_at, last_seen_at';
  return afterClientId === null
    ? select(pool, `SELECT ${columns} FROM devices WHERE shop_id = $1 ORDER BY client_id LIMIT $2`, [
        shopId,
        limit + 1,
      ])
    : select(
        pool,
        `SELECT ${columns} FROM devices WHERE shop_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3`,
        [shopId, afterClientId, limit + 1],
      );
}

/** One device's row, revoked or not; null when the projection has none (yet). */
export async function selectDevice(pool: Pool, shopId: string, clientId: string): Promise<DeviceRow | null> {
  const rows = await select<DeviceRow>(
    pool,
    'SELECT client_id, type, legacy, registered_at, revoked_at, last_seen_at FROM devices WHERE shop_id = $1 AND client_id = $2',
    [shopId, clientId],
  );
  return rows[0] ?? null;
}

/** A shop's messages newest first, keyset on (created_at, id), `limit + 1` rows after the cursor position. */
export function selectMessages(
  pool: Pool,
  shopId: string,
  state: rest.MessageStateFilter,
  limit: number,
  after: { createdKey: string; id: string } | null,
): Promise<MessageRow[]> {
  const values: unknown[] = [shopId];
  const where = ['shop_id = $1'];
  if (state !== 'all') {
    values.push(state);
    where.push(`state = $${values.length}`);
  }
  if (after !== null) {
    values.push(after.createdKey, after.id);
    where.push(`(created_at, id) < ($${values.length - 1}::timestamptz, $${values.length})`);
  }
  values.push(limit + 1);
  return select(
    pool,
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE ${where.join(' AND ')}
     ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
    values,
  );
}

/** SPEC §9.2: a shop's messages not handled yet (pending or delivered), oldest first, at most `limit`. */
export function selectUnhandledMessages(pool: Pool, shopId: string, limit: number): Promise<MessageRow[]> {
  return select(
    pool,
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE shop_id = $1 AND state IN ('pending', 'delivered')
     ORDER BY created_at, id LIMIT $2`,
    [shopId, limit],
  );
}

export async function selectMessage(pool: Pool, id: string): Promise<MessageRow | null> {
  const rows = await select<MessageRow>(pool, `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** How far the projections have committed a shard's stream; they move in the same transaction as the rows. */
export async function selectCheckpoint(pool: Pool, shard: number): Promise<StreamPosition | null> {
  const rows = await select<{ stream_ms: string; stream_seq: string }>(
    pool,
    'SELECT stream_ms, stream_seq FROM projection_checkpoints WHERE shard = $1',
    [shard],
  );
  const row = rows[0];
  return row ? { ms: Number(row.stream_ms), seq: Number(row.stream_seq) } : null;
}

export function deviceOf(row: DeviceRow, isOnline: boolean): rest.DeviceView {
  return {
    client_id: row.client_id,
    type: row.type,
    online: isOnline && row.revoked_at === null,
    revoked: row.revoked_at !== null,
    legacy: row.legacy,
    registered_at: row.registered_at.toISOString(),
    last_seen_at: row.last_seen_at?.toISOString() ?? null,
  };
}

export function messageOf(row: MessageRow): rest.MessageView {
  return {
    id: row.id,
    event_id: row.event_id,
    shop_id: row.shop_id,
    table_id: row.table_id,
    type: row.type,
    title: row.title,
    status: row.status,
    data: row.data,
    user_info: row.user_info,
    from_client_id: row.from_client_id,
    to_client_id: row.to_client_id,
    state: row.state,
    attempts: row.attempts,
    created_at: row.created_at.toISOString(),
    delivered_at: row.delivered_at?.toISOString() ?? null,
    delivered_via: row.delivered_via,
    handled_at: row.handled_at?.toISOString() ?? null,
    // A message handled before shared handling (SPEC §10) was handled by the back office.
    handled_by: row.state === 'handled' ? (row.handled_by ?? { kind: 'api' }) : null,
  };
}
