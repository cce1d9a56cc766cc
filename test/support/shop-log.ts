// Realistic event logs of one shop, built from a list of operations the way the edge, the api and the dispatcher
// would append them (recipients fixed at notify time, acks only of undelivered messages). Pure and
// deterministic: ids and times come from a counter, so a property test can shrink a failing log.
import fc from 'fast-check';
import { type BrokerEvent, createEvent, type DeviceType, messageIdOf } from '#events';

export type ShopOp =
  | { op: 'register'; client: number; type: DeviceType }
  | { op: 'revoke'; client: number }
  | { op: 'rotate'; client: number }
  | { op: 'login'; client: number }
  | { op: 'close'; client: number }
  | { op: 'notify'; client: number; audience?: 'mains' | 'subs' }
  | { op: 'ack'; client: number; count: number }
  | { op: 'fail'; pick: number; attempts: number }
  | { op: 'handle'; pick: number; status: number };

export interface ShopLogOptions {
  shopId: string;
  /** Time of the first event; each next event is 1 ms later. */
  startMs?: number;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A valid ULID-shaped id that sorts by (ms, n); deterministic, unlike newEventId. */
export function fixedEventId(ms: number, n: number): string {
  let time = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  let tail = '';
  let count = n;
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[count % 32] + tail;
    count = Math.floor(count / 32);
  }
  return time + tail;
}

interface Device {
  type: DeviceType;
  /** Every third client is a device of the original protocol (SPEC §9): its deliveries are socket writes. */
  isLegacy: boolean;
  token: number;
  isActive: boolean;
  conn: string | null;
}

/** Builds the events the ops would append; ops that the broker would refuse (revoking a stranger) are skipped. */
export function shopLog(ops: readonly ShopOp[], options: ShopLogOptions): BrokerEvent[] {
  const shopId = options.shopId;
  let nowMs = options.startMs ?? Date.UTC(2025, 0, 1);
  let n = shopSeed(shopId) * 1_000_000; // event and connection ids stay unique across shops
  const devices = new Map<string, Device>();
  const undelivered = new Map<string, string[]>(); // recipient → message ids, oldest first
  const messages: string[] = [];
  const events: BrokerEvent[] = [];
  const clientOf = (i: number) => `dev-${i}`;
  const emit = (event: BrokerEvent) => events.push(event);
  const next = () => ({ nowMs: ++nowMs, id: fixedEventId(nowMs, ++n), shopId });

  for (const op of ops) {
    if (op.op === 'fail' || op.op === 'handle') {
      const id = messages[op.pick % Math.max(1, messages.length)];
      if (id === undefined) continue;
      if (op.op === 'fail') {
        const client_id = id.slice(27);
        emit(
          createEvent({
            ...next(),
            type: 'DeliveryFailed',
            source: 'dispatcher:d1',
            data: { client_id, id, attempts: op.attempts },
          }),
        );
      } else if (op.status % 2 === 1) {
        // A cashier's handle of the whole request (SPEC §10): every copy of the notify, the others named.
        const eventId = id.slice(0, 26);
        const others = messages.filter((m) => m !== id && m.startsWith(`${eventId}.`));
        emit(
          createEvent({
            ...next(),
            type: 'MessageHandled',
            source: 'edge:e1',
            data: {
              id,
              status: op.status,
              event_id: eventId,
              by: { kind: 'device', client_id: id.slice(27) },
              notices: others.slice(1),
              dropped: others.slice(0, 1),
            },
          }),
        );
      } else {
        // As the back office handled one copy before shared handling.
        emit(
          createEvent({ ...next(), type: 'MessageHandled', source: 'api', data: { id, status: op.status } }),
        );
      }
      continue;
    }
    const client_id = clientOf(op.client);
    const device = devices.get(client_id);
    switch (op.op) {
      case 'register': {
        if (device?.isActive) break;
        const token = (device?.token ?? 0) + 1;
        const isLegacy = op.client % 3 === 2;
        devices.set(client_id, { type: op.type, isLegacy, token, isActive: true, conn: null });
        emit(
          createEvent({
            ...next(),
            type: 'DeviceRegistered',
            source: 'api',
            data: {
              client_id,
              type: op.type,
              token_id: `${client_id}-t${token}`,
              ...(isLegacy ? { legacy: true } : {}),
            },
          }),
        );
        break;
      }
      case 'revoke':
        if (!device?.isActive) break;
        device.isActive = false;
        emit(createEvent({ ...next(), type: 'DeviceRevoked', source: 'api', data: { client_id } }));
        if (device.conn) closeOf(device, client_id, 'revoked');
        break;
      case 'rotate':
        // A new token for the same registration; the old token's socket is closed with 4403.
        if (!device?.isActive) break;
        device.token += 1;
        emit(
          createEvent({
            ...next(),
            type: 'DeviceTokenRotated',
            source: 'api',
            data: { client_id, token_id: `${client_id}-t${device.token}` },
          }),
        );
        if (device.conn) closeOf(device, client_id, 'revoked');
        break;
      case 'login': {
        if (!device?.isActive) break;
        if (device.conn) closeOf(device, client_id, 'replaced');
        const conn_id = `${shopId}-c${n + 1}`;
        device.conn = conn_id;
        emit(
          createEvent({
            ...next(),
            type: 'DeviceLoggedIn',
            source: 'edge:e1',
            data: { client_id, type: device.type, conn_id, edge_id: 'e1', remote_addr: '10.0.0.1' },
          }),
        );
        break;
      }
      case 'close':
        if (device?.conn) closeOf(device, client_id, 'closed');
        break;
      case 'notify': {
        if (!device?.isActive) break;
        const audience = op.audience ?? (device.type === 'sub' ? 'mains' : 'subs');
        const recipients =
          audience === 'mains'
            ? [...devices]
                .filter(([, d]) => d.isActive && d.type === 'main')
                .map(([id]) => id)
                .sort()
            : [];
        if (audience === 'mains' && recipients.length === 0) break; // NO_MAIN_DEVICE: nothing appended
        const event = createEvent({
          ...next(),
          type: 'NotifyRequested',
          source: 'edge:e1',
          data: {
            req_id: `r${n}`,
            from_client_id: client_id,
            from_type: device.type,
            audience,
            recipients,
            table_id: n % 2 === 0 ? n % 40 : `T${n % 40}`,
            type: 'add_dish',
            status: 0,
            data: { dish: 'noodles', qty: (n % 3) + 1, note: { spicy: n % 2 === 0 } },
            user_info: { waiter: client_id },
          },
        });
        emit(event);
        for (const recipient of recipients) {
          const id = messageIdOf(event.id, recipient);
          messages.push(id);
          undelivered.set(recipient, [...(undelivered.get(recipient) ?? []), id]);
        }
        break;
      }
      case 'ack': {
        const pending = undelivered.get(client_id) ?? [];
        const ids = pending.slice(0, Math.max(1, op.count));
        if (ids.length === 0) break;
        undelivered.set(client_id, pending.slice(ids.length));
        const attempts = Object.fromEntries(ids.map((id, i) => [id, i + 1]));
        // A legacy device's deliveries are socket writes; a v1 ack says so, or (recorded before `via`) says nothing.
        const via = device?.isLegacy ? 'socket-write' : n % 2 === 0 ? 'ack' : undefined;
        emit(
          createEvent({
            ...next(),
            type: 'MessageDelivered',
            source: 'edge:e1',
            data: { client_id, ...(via ? { via } : {}), ids, attempts },
          }),
        );
        break;
      }
      default: {
        const never: never = op;
        throw new Error(`unknown op ${JSON.stringify(never)}`);
      }
    }
  }
  return events;

  function closeOf(device: Device, client_id: string, reason: string): void {
    const conn_id = device.conn!;
    device.conn = null;
    emit(
      createEvent({
        ...next(),
        type: 'ConnectionClosed',
        source: 'edge:e1',
        data: { client_id, conn_id, edge_id: 'e1', reason },
      }),
    );
  }
}

function shopSeed(shopId: string): number {
  let hash = 0;
  for (let i = 0; i < shopId.length; i++) hash = (hash * 31 + shopId.charCodeAt(i)) % 4_000_000_000;
  return hash;
}

/** A day at a busy shop: two mains and a sub log in, then each notify is acked by both mains. */
export function busyShopOps(notifies: number): ShopOp[] {
  const ops: ShopOp[] = [
    { op: 'register', client: 1, type: 'main' },
    { op: 'register', client: 2, type: 'main' },
    { op: 'register', client: 3, type: 'sub' },
    { op: 'login', client: 1 },
    { op: 'login', client: 2 },
    { op: 'login', client: 3 },
  ];
  for (let i = 0; i < notifies; i++) {
    ops.push(
      { op: 'notify', client: 3 },
      { op: 'ack', client: 1, count: 1 },
      { op: 'ack', client: 2, count: 1 },
    );
    if (i % 20 === 19) ops.push({ op: 'login', client: 3 }); // a waiter's handheld reconnects now and then
  }
  return ops;
}

const client = fc.nat(3);

/**
 * Random but eventful shop histories for property tests: two mains and a sub start registered and online, then
 * notifies, acks, handles and failures dominate, with re-registrations, token rotations and reconnects among them.
 */
export function shopOpsArbitrary(maxLength = 60): fc.Arbitrary<ShopOp[]> {
  const op: fc.Arbitrary<ShopOp> = fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('register' as const),
        client,
        type: fc.constantFrom('main' as const, 'sub' as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('revoke' as const), client }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('rotate' as const), client }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('login' as const), client }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), client }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('notify' as const), client }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('ack' as const),
        client,
        count: fc.integer({ min: 1, max: 3 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('fail' as const),
        pick: fc.nat(30),
        attempts: fc.integer({ min: 1, max: 9 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('handle' as const),
        pick: fc.nat(30),
        status: fc.integer({ min: 0, max: 5 }),
      }),
    },
  );
  const prelude: ShopOp[] = [
    { op: 'register', client: 0, type: 'main' },
    { op: 'register', client: 1, type: 'main' },
    { op: 'register', client: 2, type: 'sub' },
    { op: 'login', client: 0 },
    { op: 'login', client: 2 },
  ];
  return fc.array(op, { minLength: 10, maxLength }).map((ops) => [...prelude, ...ops]);
}
