// The projection's SQL: one batch of row changes written with one statement per kind (unnest arrays), the
// shard's checkpoint, and reading the tables back as a ProjectionView. Parameters only; no SQL is built from input.
//
// A batch is written kind by kind, not event by event. That equals applying the changes one at a time because
// (1) rows are created before they are changed (archive, devices, connections, messages first), (2) changes of
// different kinds to one row commute (see RowChange), and (3) several changes of one kind to one row are merged
// here by the same rule their guard applies (first ack wins, latest handle wins, …).
import type { Pool, PoolClient } from '#runtime';
import {
  type ConnectionRow,
  type DeviceRow,
  deviceKey,
  type EventRow,
  emptyView,
  type MessageRow,
  type ProjectionView,
  type RowChange,
} from './projection';

type Db = Pool | PoolClient;
type Registration = Extract<RowChange, { kind: 'registerDevice' | 'revokeDevice' }>;
type Stamp = { at: string; attempts: number };

/** A batch's changes, sorted by kind and merged per row. */
class ChangeSet {
  readonly archived: EventRow[] = [];
  readonly registrations: Registration[] = [];
  readonly seen = new Map<string, { shop_id: string; client_id: string; at: string }>();
  readonly opened: ConnectionRow[] = [];
  readonly closed = new Map<string, { at: string; reason: string }>();
  readonly created: MessageRow[] = [];
  readonly delivered = new Map<string, Stamp>();
  readonly failed = new Map<string, Stamp>();
  readonly handled = new Map<string, { at: string; status: number }>();

  add(change: RowChange): void {
    switch (change.kind) {
      case 'archiveEvent':
        this.archived.push(change.row);
        return;
      case 'registerDevice':
      case 'revokeDevice':
        this.registrations.push(change);
        return;
      case 'seeDevice': {
        const key = deviceKey(change.shop_id, change.client_id);
        const seen = this.seen.get(key);
        if (!seen || change.at > seen.at) this.seen.set(key, change);
        return;
      }
      case 'openConnection':
        this.opened.push(change.row);
        return;
      case 'closeConnection':
        if (!this.closed.has(change.conn_id)) this.closed.set(change.conn_id, change); // the first close wins
        return;
      case 'createMessage':
        this.created.push(change.row);
        return;
      case 'deliverMessage':
        if (!this.delivered.has(change.id)) this.delivered.set(change.id, change); // the first ack wins
        return;
      case 'failMessage': {
        const failed = this.failed.get(change.id);
        if (!failed) {
          this.failed.set(change.id, { at: change.at, attempts: change.attempts });
          return;
        }
        if (change.at > failed.at) failed.at = change.at; // failed_at and attempts only move forward
        failed.attempts = Math.max(failed.attempts, change.attempts);
        return;
      }
      case 'handleMessage': {
        const handled = this.handled.get(change.id);
        if (!handled || change.at >= handled.at) this.handled.set(change.id, change); // the latest handle wins
        return;
      }
      default: {
        const never: never = change;
        throw new Error(`unknown row change ${JSON.stringify(never)}`);
      }
    }
  }
}

/** Writes a batch's changes (inside the caller's transaction). */
export async function writeChanges(db: PoolClient, changes: readonly RowChange[]): Promise<void> {
  const set = new ChangeSet();
  for (const change of changes) set.add(change);
  if (set.archived.length > 0) await archiveEvents(db, set.archived);
  if (set.registrations.length > 0) await writeRegistrations(db, set.registrations);
  if (set.seen.size > 0) await markSeen(db, [...set.seen.values()]);
  if (set.opened.length > 0) await openConnections(db, set.opened);
  if (set.closed.size > 0) await closeConnections(db, set.closed);
  if (set.created.length > 0) await createMessages(db, set.created);
  if (set.delivered.size > 0) await deliverMessages(db, set.delivered);
  if (set.failed.size > 0) await failMessages(db, set.failed);
  if (set.handled.size > 0) await handleMessages(db, set.handled);
}

// Named statements are parsed and planned once per connection.
async function archiveEvents(db: PoolClient, rows: EventRow[]): Promise<void> {
  await db.query({
    name: 'persister-archive',
    text: `INSERT INTO events (id, shard, stream_ms, stream_seq, shop_id, type, v, at, source, data)
           SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                                $7::int[], $8::timestamptz[], $9::text[], $10::jsonb[])
           ON CONFLICT DO NOTHING`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.shard),
      rows.map((r) => r.stream_ms),
      rows.map((r) => r.stream_seq),
      rows.map((r) => r.shop_id),
      rows.map((r) => r.type),
      rows.map((r) => r.v),
      rows.map((r) => r.at),
      rows.map((r) => r.source),
      rows.map((r) => JSON.stringify(r.data)),
    ],
  });
}

const REGISTER_SQL = `
  INSERT INTO devices (shop_id, client_id, type, token_id, registered_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
  ON CONFLICT (shop_id, client_id) DO UPDATE
    SET type = EXCLUDED.type, token_id = EXCLUDED.token_id, registered_at = EXCLUDED.registered_at, revoked_at = NULL
    WHERE devices.registered_at < EXCLUDED.registered_at`;
const REVOKE_SQL = `
  UPDATE devices d SET revoked_at = u.at
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(shop_id, client_id, at)
  WHERE d.shop_id = u.shop_id AND d.client_id = u.client_id AND d.revoked_at IS NULL AND d.registered_at <= u.at`;

/**
 * Registrations and revokes do not commute (register, revoke, register again), so when one device has several
 * in a batch they are written one by one, in log order. They are rare; the usual batch has each device once.
 */
async function writeRegistrations(db: PoolClient, changes: Registration[]): Promise<void> {
  const keys = new Set(changes.map((c) => deviceKey(c.shop_id, c.client_id)));
  const groups = keys.size === changes.length ? [changes] : changes.map((c) => [c]);
  for (const group of groups) {
    const registers = group.filter((c) => c.kind === 'registerDevice');
    const revokes = group.filter((c) => c.kind === 'revokeDevice');
    if (registers.length > 0) {
      await db.query({
        name: 'persister-register',
        text: REGISTER_SQL,
        values: [
          registers.map((c) => c.shop_id),
          registers.map((c) => c.client_id),
          registers.map((c) => c.type),
          registers.map((c) => c.token_id),
          registers.map((c) => c.at),
        ],
      });
    }
    if (revokes.length > 0) {
      await db.query({
        name: 'persister-revoke',
        text: REVOKE_SQL,
        values: [revokes.map((c) => c.shop_id), revokes.map((c) => c.client_id), revokes.map((c) => c.at)],
      });
    }
  }
}

async function markSeen(db: PoolClient, seen: Array<{ shop_id: string; client_id: string; at: string }>) {
  await db.query({
    name: 'persister-seen',
    text: `UPDATE devices d SET last_seen_at = u.at
           FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(shop_id, client_id, at)
           WHERE d.shop_id = u.shop_id AND d.client_id = u.client_id
             AND (d.last_seen_at IS NULL OR d.last_seen_at < u.at)`,
    values: [seen.map((s) => s.shop_id), seen.map((s) => s.client_id), seen.map((s) => s.at)],
  });
}

async function openConnections(db: PoolClient, rows: ConnectionRow[]): Promise<void> {
  await db.query({
    name: 'persister-open',
    text: `INSERT INTO connections (conn_id, edge_id, shop_id, client_id, type, remote_addr, connected_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::timestamptz[])
           ON CONFLICT DO NOTHING`,
    values: [
      rows.map((r) => r.conn_id),
      rows.map((r) => r.edge_id),
      rows.map((r) => r.shop_id),
      rows.map((r) => r.client_id),
      rows.map((r) => r.type),
      rows.map((r) => r.remote_addr),
      rows.map((r) => r.connected_at),
    ],
  });
}

async function closeConnections(db: PoolClient, closed: Map<string, { at: string; reason: string }>) {
  const ids = [...closed.keys()];
  const values = [...closed.values()];
  await db.query({
    name: 'persister-close',
    text: `UPDATE connections c SET closed_at = u.at, close_reason = u.reason
           FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(conn_id, at, reason)
           WHERE c.conn_id = u.conn_id AND c.closed_at IS NULL`,
    values: [ids, values.map((v) => v.at), values.map((v) => v.reason)],
  });
}

async function createMessages(db: PoolClient, rows: MessageRow[]): Promise<void> {
  // The recipients of one notify share its data and user_info objects: serialise each object once.
  const json = jsonOnce();
  await db.query({
    name: 'persister-create-messages',
    text: `INSERT INTO messages (id, event_id, shop_id, table_id, type, title, status, data, user_info,
                                 from_client_id, to_client_id, state, attempts, created_at)
           SELECT id, event_id, shop_id, table_id, type, title, status, data, user_info, from_client_id,
                  to_client_id, 'pending', 0, created_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[],
                       $8::jsonb[], $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[])
             AS u(id, event_id, shop_id, table_id, type, title, status, data, user_info, from_client_id,
                  to_client_id, created_at)
           ON CONFLICT DO NOTHING`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.event_id),
      rows.map((r) => r.shop_id),
      rows.map((r) => (r.table_id === null ? null : JSON.stringify(r.table_id))),
      rows.map((r) => r.type),
      rows.map((r) => r.title),
      rows.map((r) => r.status),
      rows.map((r) => json(r.data)),
      rows.map((r) => json(r.user_info)),
      rows.map((r) => r.from_client_id),
      rows.map((r) => r.to_client_id),
      rows.map((r) => r.created_at),
    ],
  });
}

function jsonOnce(): (value: object) => string {
  let last: object | undefined;
  let text = '';
  return (value) => {
    if (value !== last) {
      last = value;
      text = JSON.stringify(value);
    }
    return text;
  };
}

async function deliverMessages(db: PoolClient, delivered: Map<string, Stamp>): Promise<void> {
  const stamps = [...delivered.values()];
  await db.query({
    name: 'persister-deliver',
    text: `UPDATE messages m
           SET delivered_at = u.at, attempts = GREATEST(m.attempts, u.attempts),
               state = CASE WHEN m.state = 'handled' THEN 'handled' ELSE 'delivered' END
           FROM unnest($1::text[], $2::timestamptz[], $3::int[]) AS u(id, at, attempts)
           WHERE m.id = u.id AND m.delivered_at IS NULL`,
    values: [[...delivered.keys()], stamps.map((s) => s.at), stamps.map((s) => s.attempts)],
  });
}

async function failMessages(db: PoolClient, failed: Map<string, Stamp>): Promise<void> {
  const stamps = [...failed.values()];
  await db.query({
    name: 'persister-fail',
    text: `UPDATE messages m
           SET failed_at = GREATEST(m.failed_at, u.at), attempts = GREATEST(m.attempts, u.attempts)
           FROM unnest($1::text[], $2::timestamptz[], $3::int[]) AS u(id, at, attempts)
           WHERE m.id = u.id AND (m.failed_at IS NULL OR m.failed_at < u.at OR m.attempts < u.attempts)`,
    values: [[...failed.keys()], stamps.map((s) => s.at), stamps.map((s) => s.attempts)],
  });
}

async function handleMessages(db: PoolClient, handled: Map<string, { at: string; status: number }>) {
  const stamps = [...handled.values()];
  await db.query({
    name: 'persister-handle',
    text: `UPDATE messages m SET state = 'handled', handled_at = u.at, status = u.status
           FROM unnest($1::text[], $2::timestamptz[], $3::int[]) AS u(id, at, status)
           WHERE m.id = u.id AND (m.handled_at IS NULL OR m.handled_at <= u.at)`,
    values: [[...handled.keys()], stamps.map((s) => s.at), stamps.map((s) => s.status)],
  });
}

/**
 * Locks the shard's checkpoint row for this transaction and answers the last stream id projected ('0-0' when
 * none). The lock serialises two persisters that both hold a batch of the shard during a lease takeover.
 */
export async function lockCheckpoint(db: PoolClient, shard: number): Promise<string> {
  const result = await db.query<{ stream_ms: string; stream_seq: string }>({
    name: 'persister-lock-checkpoint',
    text: `INSERT INTO projection_checkpoints (shard, stream_ms, stream_seq) VALUES ($1, 0, 0)
           ON CONFLICT (shard) DO UPDATE SET shard = EXCLUDED.shard
           RETURNING stream_ms, stream_seq`,
    values: [shard],
  });
  const row = result.rows[0]!;
  return `${row.stream_ms}-${row.stream_seq}`;
}

/** Moves the checkpoint, in the same transaction as the rows it covers. */
export async function advanceCheckpoint(
  db: PoolClient,
  shard: number,
  ms: number,
  seq: number,
): Promise<void> {
  await db.query({
    name: 'persister-advance-checkpoint',
    text: 'UPDATE projection_checkpoints SET stream_ms = $2, stream_seq = $3, updated_at = now() WHERE shard = $1',
    values: [shard, ms, seq],
  });
}

/** Every shard's checkpoint: the last stream id whose rows are committed. */
export async function readCheckpoints(db: Db): Promise<Map<number, string>> {
  const result = await db.query<{ shard: number; stream_ms: string; stream_seq: string }>(
    'SELECT shard, stream_ms, stream_seq FROM projection_checkpoints',
  );
  return new Map(result.rows.map((r) => [r.shard, `${r.stream_ms}-${r.stream_seq}`]));
}

/** The stream id of the newest archived event of a shard, or null. */
export async function newestArchived(db: Db, shard: number): Promise<string | null> {
  const result = await db.query<{ stream_ms: string; stream_seq: string }>(
    'SELECT stream_ms, stream_seq FROM events WHERE shard = $1 ORDER BY stream_ms DESC, stream_seq DESC LIMIT 1',
    [shard],
  );
  const row = result.rows[0];
  return row ? `${row.stream_ms}-${row.stream_seq}` : null;
}

const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());

/** A row as pg returns it: timestamptz columns as Date, bigint columns as string. */
type Stored<T, Times extends keyof T, Bigints extends keyof T = never> = Omit<T, Times | Bigints> & {
  [K in Times]: Date | null;
} & { [K in Bigints]: string };

/** Reads the projected tables back in the shape `applyChanges` builds, for the audit and the tests. */
export async function readProjection(db: Db): Promise<ProjectionView> {
  const view = emptyView();
  const [events, devices, connections, messages] = await Promise.all([
    db.query<Stored<EventRow, 'at', 'stream_ms' | 'stream_seq'>>('SELECT * FROM events'),
    db.query<Stored<DeviceRow, 'registered_at' | 'revoked_at' | 'last_seen_at'>>('SELECT * FROM devices'),
    db.query<Stored<ConnectionRow, 'connected_at' | 'closed_at'>>('SELECT * FROM connections'),
    db.query<Stored<MessageRow, 'created_at' | 'delivered_at' | 'handled_at' | 'failed_at'>>(
      'SELECT * FROM messages',
    ),
  ]);
  for (const r of events.rows) {
    const row: EventRow = {
      ...r,
      stream_ms: Number(r.stream_ms),
      stream_seq: Number(r.stream_seq),
      at: iso(r.at)!,
    };
    view.events.set(row.id, row);
    view.positions.add(`${row.shard}:${row.stream_ms}-${row.stream_seq}`);
  }
  for (const r of devices.rows) {
    const row: DeviceRow = {
      ...r,
      registered_at: iso(r.registered_at)!,
      revoked_at: iso(r.revoked_at),
      last_seen_at: iso(r.last_seen_at),
    };
    view.devices.set(deviceKey(row.shop_id, row.client_id), row);
  }
  for (const r of connections.rows) {
    view.connections.set(r.conn_id, {
      ...r,
      connected_at: iso(r.connected_at)!,
      closed_at: iso(r.closed_at),
    });
  }
  for (const r of messages.rows) {
    view.messages.set(r.id, {
      ...r,
      created_at: iso(r.created_at)!,
      delivered_at: iso(r.delivered_at),
      handled_at: iso(r.handled_at),
      failed_at: iso(r.failed_at),
    });
  }
  return view;
}
