// The projection's SQL: the shard's checkpoint, a batch of row changes written as one statement (one JSON
// document, its rows expanded by jsonb_array_elements), and reading the tables back as a ProjectionView.
// Parameters only; no SQL is built from input (a batch's statement is put together from the fixed parts below).
//
// A batch is written kind by kind, not event by event, by data-modifying CTEs that all see the snapshot taken
// before the statement. That equals applying the changes one at a time because
// (1) rows are created before they are changed: registrations are statements of their own, run before the
//     batch's statement, and a connection or message the batch creates is inserted with the batch's later
//     changes to it already applied (by `applyChanges`, the in-memory twin of the guards below), because a
//     sibling UPDATE cannot see it;
// (2) the UPDATEs change only rows that existed before the statement, each row at most once, and changes of
//     different kinds to one row commute (see RowChange): messages get one UPDATE for the batch's acks, failures
//     and handles, with each kind's guard inside it;
// (3) several changes of one kind to one row are merged here by the same rule their guard applies (first ack
//     wins, latest handle wins, …). A row that the batch creates but that exists already (a replay) is left to
//     the UPDATEs: its INSERT does nothing, and the UPDATE applies the batch's merged changes to it.
import type { HandledBy } from '#events';
import type { Pool, PoolClient } from '#runtime';
import {
  applyChanges,
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
type Registration = Extract<RowChange, { kind: 'registerDevice' | 'revokeDevice' | 'rotateToken' }>;
type Seen = Extract<RowChange, { kind: 'seeDevice' }>;
type Close = Extract<RowChange, { kind: 'closeConnection' }>;

/** The batch's acks, failures and handles of one message, merged; null where the batch has none of a kind. */
interface MessageUpdate {
  id: string;
  delivered_at: string | null;
  delivered_via: string | null;
  delivered_attempts: number | null;
  failed_at: string | null;
  failed_attempts: number | null;
  handled_at: string | null;
  handled_by: HandledBy | null;
  status: number | null;
}

/** A batch's changes, sorted by kind and merged per row. */
class ChangeSet {
  readonly archived: EventRow[] = [];
  readonly registrations: Registration[] = [];
  readonly seen = new Map<string, Seen>();
  /** Connections and messages the batch creates, with its later changes to them applied (header, rule 1). */
  readonly created = emptyView();
  readonly closed = new Map<string, Close>();
  readonly updated = new Map<string, MessageUpdate>();

  add(change: RowChange): void {
    switch (change.kind) {
      case 'archiveEvent':
        this.archived.push(change.row);
        return;
      case 'registerDevice':
      case 'revokeDevice':
      case 'rotateToken':
        this.registrations.push(change);
        return;
      case 'seeDevice': {
        const key = deviceKey(change.shop_id, change.client_id);
        const seen = this.seen.get(key);
        if (!seen || change.at > seen.at) this.seen.set(key, change);
        return;
      }
      case 'openConnection':
      case 'createMessage':
        applyChanges(this.created, [change]);
        return;
      case 'closeConnection':
        applyChanges(this.created, [change]);
        if (!this.closed.has(change.conn_id)) this.closed.set(change.conn_id, change); // the first close wins
        return;
      case 'deliverMessage': {
        applyChanges(this.created, [change]);
        const update = this.updateOf(change.id);
        if (update.delivered_at === null) {
          // the first ack wins
          update.delivered_at = change.at;
          update.delivered_via = change.via;
          update.delivered_attempts = change.attempts;
        }
        return;
      }
      case 'failMessage': {
        applyChanges(this.created, [change]);
        const update = this.updateOf(change.id);
        // failed_at and attempts only move forward
        if (update.failed_at === null || change.at > update.failed_at) update.failed_at = change.at;
        update.failed_attempts = Math.max(update.failed_attempts ?? 0, change.attempts);
        return;
      }
      case 'handleMessage': {
        applyChanges(this.created, [change]);
        const update = this.updateOf(change.id);
        if (update.handled_at === null || change.at < update.handled_at) {
          // the first handle wins
          update.handled_at = change.at;
          update.status = change.status;
          update.handled_by = change.by;
        }
        return;
      }
      default: {
        const never: never = change;
        throw new Error(`unknown row change ${JSON.stringify(never)}`);
      }
    }
  }

  private updateOf(id: string): MessageUpdate {
    let update = this.updated.get(id);
    if (!update) {
      update = {
        id,
        delivered_at: null,
        delivered_via: null,
        delivered_attempts: null,
        failed_at: null,
        failed_attempts: null,
        handled_at: null,
        handled_by: null,
        status: null,
      };
      this.updated.set(id, update);
    }
    return update;
  }
}

/** Writes a batch's changes (inside the caller's transaction). */
export async function writeChanges(db: PoolClient, changes: readonly RowChange[]): Promise<void> {
  const set = new ChangeSet();
  for (const change of changes) set.add(change);
  if (set.registrations.length > 0) await writeRegistrations(db, set.registrations);
  const rows = rowsOf(set);
  const present = BATCH_PARTS.filter((part) => rows[part].length > 0);
  if (present.length === 0) return;
  // One JSON document per batch: pg sends a string parameter as it is, where it escapes arrays char by char.
  const document: Partial<Record<BatchPart, unknown[][]>> = {};
  for (const part of present) document[part] = rows[part];
  await db.query({ ...batchStatement(present), values: [JSON.stringify(document)] });
}

/**
 * The rows of each part of a batch, each row a JSON array in the column order its statement reads (r->>0, r->>1,
 * …). Arrays rather than objects because PostgreSQL parses and sorts a jsonb object's keys, row by row: decoding
 * objects with jsonb_to_recordset cost it about twice as much as these arrays, and more than the text arrays
 * (unnest) they replace.
 */
function rowsOf(set: ChangeSet): Record<BatchPart, unknown[][]> {
  return {
    archived: set.archived.map((e) => [
      e.id,
      e.shard,
      e.stream_ms,
      e.stream_seq,
      e.shop_id,
      e.type,
      e.v,
      e.at,
      e.source,
      e.data,
    ]),
    seen: Array.from(set.seen.values(), (s) => [s.shop_id, s.client_id, s.at]),
    opened: Array.from(set.created.connections.values(), (c) => [
      c.conn_id,
      c.edge_id,
      c.shop_id,
      c.client_id,
      c.type,
      c.remote_addr,
      c.connected_at,
      c.closed_at,
      c.close_reason,
    ]),
    closed: Array.from(set.closed.values(), (c) => [c.conn_id, c.at, c.reason]),
    created: Array.from(set.created.messages.values(), (m) => [
      m.id,
      m.event_id,
      m.shop_id,
      m.table_id,
      m.type,
      m.title,
      m.status,
      m.data,
      m.user_info,
      m.from_client_id,
      m.to_client_id,
      m.state,
      m.attempts,
      m.created_at,
      m.delivered_at,
      m.handled_at,
      m.failed_at,
      m.handled_by,
      m.delivered_via,
    ]),
    updated: Array.from(set.updated.values(), (u) => [
      u.id,
      u.delivered_at,
      u.delivered_attempts,
      u.failed_at,
      u.failed_attempts,
      u.handled_at,
      u.status,
      u.handled_by,
      u.delivered_via,
    ]),
  };
}

/**
 * The statement of each part of a batch, reading its rows from the part's key of the batch's document ($1). $1 is
 * a jsonb parameter: PostgreSQL parses the document once, when the statement is bound, and `->` then picks a part
 * or a field without parsing again. The parts are independent of one another (see the header).
 */
const BATCH_SQL = {
  archived: `
    INSERT INTO events (id, shard, stream_ms, stream_seq, shop_id, type, v, at, source, data)
    SELECT r->>0, (r->>1)::int, (r->>2)::bigint, (r->>3)::bigint, r->>4, r->>5, (r->>6)::int, (r->>7)::timestamptz,
           r->>8, r->9
    FROM jsonb_array_elements($1::jsonb -> 'archived') r
    ON CONFLICT DO NOTHING`,
  seen: `
    UPDATE devices d SET last_seen_at = u.at
    FROM (SELECT r->>0 AS shop_id, r->>1 AS client_id, (r->>2)::timestamptz AS at
          FROM jsonb_array_elements($1::jsonb -> 'seen') r) u
    WHERE d.shop_id = u.shop_id AND d.client_id = u.client_id
      AND (d.last_seen_at IS NULL OR d.last_seen_at < u.at)`,
  opened: `
    INSERT INTO connections (conn_id, edge_id, shop_id, client_id, type, remote_addr, connected_at, closed_at,
                             close_reason)
    SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::timestamptz, (r->>7)::timestamptz, r->>8
    FROM jsonb_array_elements($1::jsonb -> 'opened') r
    ON CONFLICT DO NOTHING`,
  closed: `
    UPDATE connections c SET closed_at = u.at, close_reason = u.reason
    FROM (SELECT r->>0 AS conn_id, (r->>1)::timestamptz AS at, r->>2 AS reason
          FROM jsonb_array_elements($1::jsonb -> 'closed') r) u
    WHERE c.conn_id = u.conn_id AND c.closed_at IS NULL`,
  // table_id is kept as sent (a JSON string stays a string, a number a number); a JSON null is stored as NULL.
  created: `
    INSERT INTO messages (id, event_id, shop_id, table_id, type, title, status, data, user_info, from_client_id,
                          to_client_id, state, attempts, created_at, delivered_at, handled_at, failed_at, handled_by,
                          delivered_via)
    SELECT r->>0, r->>1, r->>2, NULLIF(r->3, 'null'), r->>4, r->>5, (r->>6)::int, r->7, r->8, r->>9,
           r->>10, r->>11, (r->>12)::int, (r->>13)::timestamptz, (r->>14)::timestamptz, (r->>15)::timestamptz,
           (r->>16)::timestamptz, NULLIF(r->17, 'null'), r->>18
    FROM jsonb_array_elements($1::jsonb -> 'created') r
    ON CONFLICT DO NOTHING`,
  // The guards of deliverMessage, failMessage and handleMessage, each true only if u holds a change of its kind:
  //   delivers: m.delivered_at IS NULL AND u.delivered_at IS NOT NULL
  //   fails:    u.failed_at > COALESCE(m.failed_at, '-infinity') OR u.failed_attempts > m.attempts
  //   handles:  u.handled_at < COALESCE(m.handled_at, 'infinity')   (the first handle wins, SPEC §10)
  updated: `
    UPDATE messages m
    SET delivered_at = COALESCE(m.delivered_at, u.delivered_at),
        delivered_via = CASE WHEN m.delivered_at IS NULL THEN u.delivered_via ELSE m.delivered_via END,
        failed_at = GREATEST(m.failed_at, u.failed_at),
        attempts = GREATEST(m.attempts, u.failed_attempts,
                            CASE WHEN m.delivered_at IS NULL THEN u.delivered_attempts END),
        handled_at = LEAST(m.handled_at, u.handled_at),
        status = CASE WHEN u.handled_at < COALESCE(m.handled_at, 'infinity') THEN u.status ELSE m.status END,
        handled_by = CASE WHEN u.handled_at < COALESCE(m.handled_at, 'infinity') THEN u.handled_by
                          ELSE m.handled_by END,
        state = CASE WHEN u.handled_at IS NOT NULL OR m.state = 'handled' THEN 'handled'
                     WHEN m.delivered_at IS NULL AND u.delivered_at IS NOT NULL THEN 'delivered'
                     ELSE m.state END
    FROM (SELECT r->>0 AS id, (r->>1)::timestamptz AS delivered_at, (r->>2)::int AS delivered_attempts,
                 (r->>3)::timestamptz AS failed_at, (r->>4)::int AS failed_attempts,
                 (r->>5)::timestamptz AS handled_at, (r->>6)::int AS status, NULLIF(r->7, 'null') AS handled_by,
                 r->>8 AS delivered_via
          FROM jsonb_array_elements($1::jsonb -> 'updated') r) u
    WHERE m.id = u.id
      AND ((m.delivered_at IS NULL AND u.delivered_at IS NOT NULL)
           OR u.failed_at > COALESCE(m.failed_at, '-infinity') OR u.failed_attempts > m.attempts
           OR u.handled_at < COALESCE(m.handled_at, 'infinity'))`,
} as const;
type BatchPart = keyof typeof BATCH_SQL;
const BATCH_PARTS = Object.keys(BATCH_SQL) as BatchPart[];
const batchStatements = new Map<string, { name: string; text: string }>();

/**
 * One statement of the parts a batch has: all but the last as data-modifying CTEs. A part with no rows is left
 * out rather than run empty, because each costs PostgreSQL its tables and indexes opened and locked. Named
 * statements are parsed and planned once per connection; a batch uses one of a few shapes (a notify, an ack, a
 * login, …).
 */
function batchStatement(parts: BatchPart[]): { name: string; text: string } {
  const name = `persister-write-${parts.join('-')}`;
  let statement = batchStatements.get(name);
  if (!statement) {
    const ctes = parts.slice(0, -1).map((part) => `${part} AS (${BATCH_SQL[part]})`);
    const main = BATCH_SQL[parts[parts.length - 1]!];
    statement = { name, text: ctes.length === 0 ? main : `WITH ${ctes.join(',\n')}\n${main}` };
    batchStatements.set(name, statement);
  }
  return statement;
}

// Rows as in rowsOf: register [shop_id, client_id, type, token_id, at, legacy], revoke [shop_id, client_id, at],
// rotate [shop_id, client_id, token_id, at].
const REGISTER_SQL = `
  INSERT INTO devices (shop_id, client_id, type, token_id, registered_at, legacy)
  SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::timestamptz, (r->>5)::boolean FROM jsonb_array_elements($1::jsonb) r
  ON CONFLICT (shop_id, client_id) DO UPDATE
    SET type = EXCLUDED.type, token_id = EXCLUDED.token_id, registered_at = EXCLUDED.registered_at,
        token_rotated_at = NULL, revoked_at = NULL, legacy = EXCLUDED.legacy
    WHERE devices.registered_at < EXCLUDED.registered_at`;
const REVOKE_SQL = `
  UPDATE devices d SET revoked_at = u.at
  FROM (SELECT r->>0 AS shop_id, r->>1 AS client_id, (r->>2)::timestamptz AS at
        FROM jsonb_array_elements($1::jsonb) r) u
  WHERE d.shop_id = u.shop_id AND d.client_id = u.client_id AND d.revoked_at IS NULL AND d.registered_at <= u.at`;
const ROTATE_SQL = `
  UPDATE devices d SET token_id = u.token_id, token_rotated_at = u.at
  FROM (SELECT r->>0 AS shop_id, r->>1 AS client_id, r->>2 AS token_id, (r->>3)::timestamptz AS at
        FROM jsonb_array_elements($1::jsonb) r) u
  WHERE d.shop_id = u.shop_id AND d.client_id = u.client_id AND d.revoked_at IS NULL AND d.registered_at <= u.at
    AND (d.token_rotated_at IS NULL OR d.token_rotated_at <= u.at)`;

/**
 * Registrations, revokes and rotations do not commute (register, revoke, register again), so when one device has
 * several in a batch they are written one by one, in log order. They are rare; the usual batch has each device once.
 */
async function writeRegistrations(db: PoolClient, changes: Registration[]): Promise<void> {
  const keys = new Set(changes.map((c) => deviceKey(c.shop_id, c.client_id)));
  const groups = keys.size === changes.length ? [changes] : changes.map((c) => [c]);
  for (const group of groups) {
    const registers = group.filter((c) => c.kind === 'registerDevice');
    const revokes = group.filter((c) => c.kind === 'revokeDevice');
    const rotations = group.filter((c) => c.kind === 'rotateToken');
    if (registers.length > 0) {
      const rows = registers.map((c) => [c.shop_id, c.client_id, c.type, c.token_id, c.at, c.legacy]);
      await db.query({ name: 'persister-register', text: REGISTER_SQL, values: [JSON.stringify(rows)] });
    }
    if (revokes.length > 0) {
      const rows = revokes.map((c) => [c.shop_id, c.client_id, c.at]);
      await db.query({ name: 'persister-revoke', text: REVOKE_SQL, values: [JSON.stringify(rows)] });
    }
    if (rotations.length > 0) {
      const rows = rotations.map((c) => [c.shop_id, c.client_id, c.token_id, c.at]);
      await db.query({ name: 'persister-rotate', text: ROTATE_SQL, values: [JSON.stringify(rows)] });
    }
  }
}

/**
 * Locks the checkpoint rows of a transaction's shards for the rest of it, in shard order, and moves each to its
 * `last` unless it is at or past it already; answers where each was before ('0-0' for a new shard), so the caller
 * skips the entries up to there. One statement for every shard of a group commit: a round trip per shard was most
 * of a transaction's round trips. The locks serialise two persisters that both hold a batch of a shard during a
 * lease takeover: the second waits for the first to commit, then reads the checkpoint the first one moved; taking
 * them in shard order keeps two such transactions from deadlocking. The batches' rows are written later in the same
 * transaction, so they commit with the checkpoints or not at all.
 */
export async function moveCheckpoints(
  db: PoolClient,
  moves: ReadonlyArray<{ shard: number; last: { ms: number; seq: number } }>,
): Promise<Map<number, string>> {
  if (moves.length === 0) return new Map();
  const previous = await moveCheckpointsOnce(db, moves);
  // A shard's first batch creates its row. When another persister creates it after this statement's snapshot, the
  // INSERT does nothing and no row is answered; the next statement's snapshot sees (and locks) that row.
  const missed = moves.filter(({ shard }) => !previous.has(shard));
  if (missed.length > 0)
    for (const [shard, at] of await moveCheckpointsOnce(db, missed)) previous.set(shard, at);
  for (const { shard } of moves)
    if (!previous.has(shard)) throw new Error(`checkpoint of shard ${shard} neither found nor created`);
  return previous;
}

// FOR UPDATE waits for a concurrent holder of a row and then reads its committed version, and under ORDER BY it
// locks in that order; the UPDATE beside it moves the rows this statement locked (a sibling CTE cannot see a row
// inserted in the same statement, hence the INSERT only of shards that had none).
const MOVE_CHECKPOINTS_SQL = `
  WITH wanted AS (
    SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[]) AS w(shard, stream_ms, stream_seq)
  ), previous AS (
    SELECT shard, stream_ms, stream_seq FROM projection_checkpoints
    WHERE shard = ANY($1::int[]) ORDER BY shard FOR UPDATE
  ), moved AS (
    UPDATE projection_checkpoints c SET stream_ms = w.stream_ms, stream_seq = w.stream_seq, updated_at = now()
    FROM previous p JOIN wanted w USING (shard)
    WHERE c.shard = p.shard AND (p.stream_ms, p.stream_seq) < (w.stream_ms, w.stream_seq)
  ), created AS (
    INSERT INTO projection_checkpoints (shard, stream_ms, stream_seq)
    SELECT w.shard, w.stream_ms, w.stream_seq FROM wanted w
    WHERE NOT EXISTS (SELECT FROM previous p WHERE p.shard = w.shard)
    ORDER BY w.shard
    ON CONFLICT (shard) DO NOTHING
    RETURNING shard
  )
  SELECT shard, stream_ms, stream_seq FROM previous
  UNION ALL
  SELECT shard, 0, 0 FROM created`;

async function moveCheckpointsOnce(
  db: PoolClient,
  moves: ReadonlyArray<{ shard: number; last: { ms: number; seq: number } }>,
): Promise<Map<number, string>> {
  const result = await db.query<{ shard: number; stream_ms: string; stream_seq: string }>({
    name: 'persister-move-checkpoints',
    text: MOVE_CHECKPOINTS_SQL,
    values: [moves.map((m) => m.shard), moves.map((m) => m.last.ms), moves.map((m) => m.last.seq)],
  });
  return new Map(result.rows.map((row) => [row.shard, `${row.stream_ms}-${row.stream_seq}`]));
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
    db.query<Stored<DeviceRow, 'registered_at' | 'token_rotated_at' | 'revoked_at' | 'last_seen_at'>>(
      'SELECT * FROM devices',
    ),
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
      token_rotated_at: iso(r.token_rotated_at),
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
