// ◇ Which rows each event produces: the projection as a pure fold over the log, shared by the persister,
// `broker audit` and `broker rebuild`. No I/O, no clock: time comes from the event.
//
// `project` needs no state: a notify carries its recipients (fixed when it was appended), and every decision
// that depends on a row ("only if not yet delivered") is a guard of the change, checked where the row lives —
// in PostgreSQL by store.ts, in memory by `applyChanges` below. So the persister never reads before writing,
// and the two applications of a guard must stay the same rule (test/integration/persister pins them together).
import {
  type BrokerEvent,
  type DeliveryVia,
  type EventOf,
  type HandledBy,
  messagesOf,
  parseStreamId,
} from '#events';

/** Where an event sits in the log: its shard and its stream id there. The archive keeps both. */
export interface EventOrigin {
  shard: number;
  streamId: string;
}

export interface EventRow {
  id: string;
  shard: number;
  stream_ms: number;
  stream_seq: number;
  shop_id: string;
  type: string;
  v: number;
  at: string;
  source: string;
  data: unknown;
}

export interface DeviceRow {
  shop_id: string;
  client_id: string;
  type: 'main' | 'sub';
  token_id: string;
  /** SPEC §9: may log in over the original protocol. */
  legacy: boolean;
  registered_at: string;
  /** When token_id was last rotated; null while it is the registration's own token. */
  token_rotated_at: string | null;
  revoked_at: string | null;
  last_seen_at: string | null;
}

export interface ConnectionRow {
  conn_id: string;
  edge_id: string;
  shop_id: string;
  client_id: string;
  type: string;
  remote_addr: string;
  connected_at: string;
  closed_at: string | null;
  close_reason: string | null;
}

export type MessageState = 'pending' | 'delivered' | 'handled';

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
  state: MessageState;
  attempts: number;
  created_at: string;
  delivered_at: string | null;
  /** How the delivery is known: the device's ack, or a write to a legacy device's socket (SPEC §9.1). */
  delivered_via: DeliveryVia | null;
  handled_at: string | null;
  handled_by: HandledBy | null;
  failed_at: string | null;
}

/**
 * One change to one row. Each kind's guard makes it idempotent, and the guards are chosen so that changes of
 * different kinds to the same message commute (store.ts writes a batch kind by kind, not event by event).
 */
export type RowChange =
  /** Insert unless the event id (or its stream position) is archived already. */
  | { kind: 'archiveEvent'; row: EventRow }
  /** Insert, or overwrite a registration older than `at` (a re-registration after a revoke). */
  | {
      kind: 'registerDevice';
      shop_id: string;
      client_id: string;
      type: 'main' | 'sub';
      token_id: string;
      legacy: boolean;
      at: string;
    }
  /** Only an active registration made at or before `at`; the first revoke wins. */
  | { kind: 'revokeDevice'; shop_id: string; client_id: string; at: string }
  /** Only an active registration made at or before `at`, and no later rotation; the latest rotation wins. */
  | { kind: 'rotateToken'; shop_id: string; client_id: string; token_id: string; at: string }
  /** last_seen_at moves forward only. */
  | { kind: 'seeDevice'; shop_id: string; client_id: string; at: string }
  /** Insert once. */
  | { kind: 'openConnection'; row: ConnectionRow }
  /** Only an open connection; the first close wins. */
  | { kind: 'closeConnection'; conn_id: string; at: string; reason: string }
  /** Insert once per message id. */
  | { kind: 'createMessage'; row: MessageRow }
  /** Only while delivered_at is null (a late ack is marked once); a handled message stays handled. */
  | { kind: 'deliverMessage'; id: string; at: string; attempts: number; via: DeliveryVia }
  /** failed_at and attempts move forward only. */
  | { kind: 'failMessage'; id: string; at: string; attempts: number }
  /** SPEC §10: the first handle of a copy wins (the earliest `at`; a tie keeps what is there). */
  | { kind: 'handleMessage'; id: string; at: string; status: number; by: HandledBy };

export type RowChangeKind = RowChange['kind'];

/** Timestamps in one canonical form (what PostgreSQL gives back), so that string order is time order. */
export function canonicalTime(iso: string): string {
  return new Date(iso).toISOString();
}

/** The row changes one event makes: always its archive row, then what its type projects to. */
export function project(event: BrokerEvent, origin: EventOrigin): RowChange[] {
  const at = canonicalTime(event.at);
  const changes: RowChange[] = [{ kind: 'archiveEvent', row: archiveRowOf(event, origin, at) }];
  switch (event.type) {
    case 'DeviceRegistered': {
      const d = event.data;
      changes.push({
        kind: 'registerDevice',
        shop_id: event.shop_id,
        client_id: d.client_id,
        type: d.type,
        token_id: d.token_id,
        legacy: d.legacy === true,
        at,
      });
      break;
    }
    case 'DeviceRevoked':
      changes.push({ kind: 'revokeDevice', shop_id: event.shop_id, client_id: event.data.client_id, at });
      break;
    case 'DeviceTokenRotated': {
      const d = event.data;
      changes.push({
        kind: 'rotateToken',
        shop_id: event.shop_id,
        client_id: d.client_id,
        token_id: d.token_id,
        at,
      });
      break;
    }
    case 'DeviceLoggedIn': {
      const d = event.data;
      changes.push(
        {
          kind: 'openConnection',
          row: {
            conn_id: d.conn_id,
            edge_id: d.edge_id,
            shop_id: event.shop_id,
            client_id: d.client_id,
            type: d.type,
            remote_addr: d.remote_addr,
            connected_at: at,
            closed_at: null,
            close_reason: null,
          },
        },
        { kind: 'seeDevice', shop_id: event.shop_id, client_id: d.client_id, at },
      );
      break;
    }
    case 'ConnectionClosed':
      changes.push(
        { kind: 'closeConnection', conn_id: event.data.conn_id, at, reason: event.data.reason },
        { kind: 'seeDevice', shop_id: event.shop_id, client_id: event.data.client_id, at },
      );
      break;
    case 'NotifyRequested':
      // A broadcast to subs is best effort and has no rows besides its archive entry.
      if (event.data.audience === 'mains') pushMessages(changes, event, at);
      break;
    case 'MessageDelivered': {
      // Events recorded before `via` was named were all acks.
      const via = event.data.via ?? 'ack';
      for (const id of event.data.ids) {
        changes.push({ kind: 'deliverMessage', id, at, attempts: event.data.attempts[id] ?? 0, via });
      }
      break;
    }
    case 'DeliveryFailed':
      changes.push({ kind: 'failMessage', id: event.data.id, at, attempts: event.data.attempts });
      break;
    case 'MessageHandled': {
      // Every copy of the request the handle named (SPEC §10); an event from before shared handling names one copy,
      // and came from the back office.
      const d = event.data;
      const by = d.by ?? { kind: 'api' };
      for (const id of [d.id, ...(d.notices ?? []), ...(d.dropped ?? [])])
        changes.push({ kind: 'handleMessage', id, at, status: d.status, by });
      break;
    }
    default: {
      const never: never = event;
      return never;
    }
  }
  return changes;
}

function archiveRowOf(event: BrokerEvent, origin: EventOrigin, at: string): EventRow {
  const position = parseStreamId(origin.streamId);
  return {
    id: event.id,
    shard: origin.shard,
    stream_ms: position.ms,
    stream_seq: position.seq,
    shop_id: event.shop_id,
    type: event.type,
    v: event.v,
    at,
    source: event.source,
    data: event.data,
  };
}

function pushMessages(changes: RowChange[], event: EventOf<'NotifyRequested'>, at: string): void {
  // An object literal of fixed shape, not a spread: this runs once per recipient on the hot path.
  for (const m of messagesOf(event)) {
    changes.push({
      kind: 'createMessage',
      row: {
        id: m.id,
        event_id: event.id,
        shop_id: m.shop_id,
        table_id: m.table_id,
        type: m.type,
        title: m.title,
        status: m.status,
        data: m.data,
        user_info: m.user_info,
        from_client_id: m.from_client_id,
        to_client_id: m.to_client_id,
        state: 'pending',
        attempts: 0,
        created_at: at,
        delivered_at: null,
        delivered_via: null,
        handled_at: null,
        handled_by: null,
        failed_at: null,
      },
    });
  }
}

/** The projected tables in memory: what `broker audit` expects PostgreSQL to hold. */
export interface ProjectionView {
  events: Map<string, EventRow>;
  /** Keyed by deviceKey(shop_id, client_id). */
  devices: Map<string, DeviceRow>;
  connections: Map<string, ConnectionRow>;
  messages: Map<string, MessageRow>;
  /** Archived stream positions, `<shard>:<ms>-<seq>`. */
  positions: Set<string>;
}

export function emptyView(): ProjectionView {
  return {
    events: new Map(),
    devices: new Map(),
    connections: new Map(),
    messages: new Map(),
    positions: new Set(),
  };
}

/** Identifiers hold no '/', so this key is unambiguous. */
export function deviceKey(shopId: string, clientId: string): string {
  return `${shopId}/${clientId}`;
}

/** Applies changes in order, with the same guards as the SQL in store.ts. Mutates the view: audits fold millions. */
export function applyChanges(view: ProjectionView, changes: readonly RowChange[]): void {
  for (const change of changes) applyChange(view, change);
}

/** One event folded into the view: `applyChanges(view, project(event, origin))`. */
export function evolve(view: ProjectionView, event: BrokerEvent, origin: EventOrigin): void {
  applyChanges(view, project(event, origin));
}

function applyChange(view: ProjectionView, change: RowChange): void {
  switch (change.kind) {
    case 'archiveEvent': {
      const position = positionKey(change.row);
      if (view.events.has(change.row.id) || view.positions.has(position)) return;
      view.events.set(change.row.id, change.row);
      view.positions.add(position);
      return;
    }
    case 'registerDevice': {
      const key = deviceKey(change.shop_id, change.client_id);
      const device = view.devices.get(key);
      if (device && device.registered_at >= change.at) return;
      view.devices.set(key, {
        shop_id: change.shop_id,
        client_id: change.client_id,
        type: change.type,
        token_id: change.token_id,
        legacy: change.legacy,
        registered_at: change.at,
        token_rotated_at: null,
        revoked_at: null,
        last_seen_at: device?.last_seen_at ?? null,
      });
      return;
    }
    case 'revokeDevice': {
      const device = view.devices.get(deviceKey(change.shop_id, change.client_id));
      if (device && device.revoked_at === null && device.registered_at <= change.at)
        device.revoked_at = change.at;
      return;
    }
    case 'rotateToken': {
      const device = view.devices.get(deviceKey(change.shop_id, change.client_id));
      if (!device || device.revoked_at !== null || device.registered_at > change.at) return;
      if (device.token_rotated_at !== null && device.token_rotated_at > change.at) return;
      device.token_id = change.token_id;
      device.token_rotated_at = change.at;
      return;
    }
    case 'seeDevice': {
      const device = view.devices.get(deviceKey(change.shop_id, change.client_id));
      if (device) device.last_seen_at = later(device.last_seen_at, change.at);
      return;
    }
    case 'openConnection':
      if (!view.connections.has(change.row.conn_id))
        view.connections.set(change.row.conn_id, { ...change.row });
      return;
    case 'closeConnection': {
      const connection = view.connections.get(change.conn_id);
      if (connection && connection.closed_at === null) {
        connection.closed_at = change.at;
        connection.close_reason = change.reason;
      }
      return;
    }
    case 'createMessage':
      if (!view.messages.has(change.row.id)) view.messages.set(change.row.id, { ...change.row });
      return;
    case 'deliverMessage': {
      const message = view.messages.get(change.id);
      if (!message || message.delivered_at !== null) return;
      message.delivered_at = change.at;
      message.delivered_via = change.via;
      if (message.state !== 'handled') message.state = 'delivered';
      message.attempts = Math.max(message.attempts, change.attempts);
      return;
    }
    case 'failMessage': {
      const message = view.messages.get(change.id);
      if (!message) return;
      message.failed_at = later(message.failed_at, change.at);
      message.attempts = Math.max(message.attempts, change.attempts);
      return;
    }
    case 'handleMessage': {
      const message = view.messages.get(change.id);
      if (!message || (message.handled_at !== null && message.handled_at <= change.at)) return;
      message.state = 'handled';
      message.handled_at = change.at;
      message.status = change.status;
      message.handled_by = change.by;
      return;
    }
    default: {
      const never: never = change;
      throw new Error(`unknown row change ${JSON.stringify(never)}`);
    }
  }
}

function later(current: string | null, candidate: string): string {
  return current === null || candidate > current ? candidate : current;
}

/** The archive is unique on (shard, stream position) as well as on the event id. */
function positionKey(row: EventRow): string {
  return `${row.shard}:${row.stream_ms}-${row.stream_seq}`;
}
