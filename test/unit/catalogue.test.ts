// The event catalogue as a contract: every type survives createEvent → encodeEvent → decodeEntry unchanged, and
// anything malformed is refused with a reason that says what was wrong (the dead-letter stream shows it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BrokerEvent,
  CATALOGUE,
  createEvent,
  type DecodeResult,
  decodeEntry,
  EVENT_TYPES,
  type EventData,
  type EventType,
  encodeEvent,
  explainInvalidEvent,
  messageIdOf,
  normaliseDeviceType,
} from '#events';

// ── Arbitraries: realistic wire data ─────────────────────────────────────────────────────────────────────

const identifier = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const ulid = fc.stringMatching(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
/** Times from 1970 to 2100: ISO 8601 with a four-digit year, as every clock we meet writes it. */
const nowMs = fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) });
const deviceType = fc.constantFrom('main', 'sub', '主', '副').map(normaliseDeviceType);
const text = (maxLength: number) =>
  fc.string({ unit: 'grapheme', maxLength }).filter((s) => s.length <= maxLength);
const nonEmptyText = (maxLength: number) => text(maxLength).filter((s) => s.length > 0);
const menuText = fc.constantFrom('宫保鸡丁', 'Phở bò', 'crème brûlée', '🍜 ramen ×2', 'tôm hùm', '');
/** A JSON object exactly as a device sends it: unicode keys and values, nested, already through JSON.parse. */
const jsonObject = fc
  .dictionary(
    fc.oneof(text(12), menuText),
    fc.oneof(
      menuText,
      fc.json({ maxDepth: 3, stringUnit: 'grapheme' }).map((t): unknown => JSON.parse(t)),
    ),
    { maxKeys: 6 },
  )
  .map((value) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>);
const tableId = fc.oneof(text(128), fc.integer(), fc.maxSafeInteger(), fc.constant('A-12'));
const source = fc.oneof(
  fc.constantFrom('api', 'cli'),
  identifier.map((id) => `edge:${id}`),
  identifier.map((id) => `dispatcher:${id}`),
);
const messageId = fc.tuple(ulid, identifier).map(([event, client]) => messageIdOf(event, client));
const status = fc.integer({ min: -2147483648, max: 2147483647 });

const dataOf: { [T in EventType]: fc.Arbitrary<EventData<T>> } = {
  DeviceRegistered: fc.record({
    client_id: identifier,
    type: deviceType,
    token_id: fc.oneof(ulid, identifier),
  }),
  DeviceRevoked: fc.record({ client_id: identifier }),
  DeviceTokenRotated: fc.record({ client_id: identifier, token_id: fc.oneof(ulid, identifier) }),
  DeviceLoggedIn: fc.record({
    client_id: identifier,
    type: deviceType,
    conn_id: identifier,
    edge_id: identifier,
    remote_addr: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('')),
  }),
  ConnectionClosed: fc.record(
    {
      client_id: identifier,
      conn_id: identifier,
      edge_id: identifier,
      reason: fc.constantFrom('logout', 'closed', 'replaced', 'revoked', 'operator', 'drain', 'edge_lost'),
      close_code: fc.integer({ min: 1000, max: 4999 }),
    },
    { requiredKeys: ['client_id', 'conn_id', 'edge_id', 'reason'] },
  ),
  NotifyRequested: fc.record({
    req_id: nonEmptyText(128),
    from_client_id: fc.option(identifier, { nil: null }),
    from_type: fc.constantFrom('main', 'sub', 'api'),
    audience: fc.constantFrom('mains', 'subs'),
    recipients: fc.uniqueArray(identifier, { maxLength: 8 }).map((ids) => ids.sort()),
    table_id: fc.option(tableId, { nil: null }),
    type: fc.oneof(
      fc.constantFrom('add_dish', 'return_dish', 'discount', 'gift', 'checkout', '加菜'),
      nonEmptyText(64),
    ),
    status,
    data: jsonObject,
    user_info: jsonObject,
  }),
  MessageDelivered: fc.uniqueArray(messageId, { minLength: 1, maxLength: 20 }).chain((ids) =>
    fc.record({
      client_id: identifier,
      ids: fc.constant(ids),
      attempts: fc
        .array(fc.nat(20), { minLength: ids.length, maxLength: ids.length })
        .map((counts) => Object.fromEntries(ids.map((id, i) => [id, counts[i]!]))),
    }),
  ),
  DeliveryFailed: fc.record({ client_id: identifier, id: messageId, attempts: fc.nat(100) }),
  MessageHandled: fc.record({ id: messageId, status }),
};

function eventOf<T extends EventType>(type: T): fc.Arbitrary<BrokerEvent> {
  const data: fc.Arbitrary<EventData<T>> = dataOf[type];
  return fc
    .tuple(identifier, source, nowMs, ulid, data)
    .map(([shopId, src, ms, id, d]) => createEvent<T>({ type, shopId, source: src, nowMs: ms, id, data: d }));
}

const anyEvent = fc.oneof(...EVENT_TYPES.map((type) => eventOf(type)));

/** What Redis hands back: the fields as strings, after a trip through JSON exactly like the stream's. */
const roundTrip = (event: BrokerEvent): DecodeResult => decodeEntry(encodeEvent(event));

function reasonOf(result: DecodeResult): string {
  if (result.ok) throw new Error(`expected a refusal, got a valid ${result.event.type}`);
  return result.reason;
}

const REMOVED = Symbol('removed');
type Change = [path: string, value: unknown];

/** A valid NotifyRequested with some fields changed (`a.b` paths; REMOVED deletes), as the stream would hold it. */
function spoiled(...changes: Change[]): DecodeResult {
  const event = createEvent({
    type: 'NotifyRequested',
    shopId: 'shop-1',
    source: 'edge:e1',
    nowMs: Date.UTC(2025, 0, 1),
    id: '01JH0000000000000000000000',
    data: {
      req_id: 'r1',
      from_client_id: 'waiter-1',
      from_type: 'sub',
      audience: 'mains',
      recipients: ['pos-1'],
      table_id: 12,
      type: 'add_dish',
      status: 0,
      data: { dish: '宫保鸡丁' },
      user_info: { name: '小王' },
    },
  });
  const copy = JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
  for (const [path, value] of changes) {
    const parts = path.split('.');
    const field = parts.pop()!;
    const parent = parts.reduce((node, part) => node[part] as Record<string, unknown>, copy);
    if (value === REMOVED) delete parent[field];
    else parent[field] = value;
  }
  return decodeEntry(['t', String(copy.type), 'e', JSON.stringify(copy)]);
}

// ── Round trip ───────────────────────────────────────────────────────────────────────────────────────────

describe('when an event is written to the stream and read back', () => {
  it('covers every type of the catalogue', () => {
    expect(Object.keys(dataOf).sort()).toEqual([...EVENT_TYPES].sort());
  });

  for (const type of EVENT_TYPES) {
    it(`returns a ${type} unchanged`, () => {
      fc.assert(
        fc.property(eventOf(type), (event) => {
          const decoded = roundTrip(event);
          expect(decoded).toEqual({ ok: true, event });
        }),
        { numRuns: 200 },
      );
    });
  }

  it('stamps the type and version of the catalogue and the time it was given', () => {
    fc.assert(
      fc.property(anyEvent, (event) => {
        const [t, type, e] = encodeEvent(event);
        expect([t, type, e]).toEqual(['t', event.type, 'e']);
        expect(event.v).toBe(CATALOGUE[event.type].v);
        expect(Date.parse(event.at)).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('keeps a string table_id a string and an integer an integer', () => {
    for (const table_id of ['12', 12, '桌-7', 0, null]) {
      const decoded = spoiled(['data.table_id', table_id]);
      expect(decoded.ok && decoded.event.type === 'NotifyRequested' && decoded.event.data.table_id).toBe(
        table_id === null ? null : table_id,
      );
    }
  });

  it('finds the body whatever the order of the fields', () => {
    const event = createEvent({
      type: 'DeviceRevoked',
      shopId: 's1',
      source: 'api',
      nowMs: 0,
      data: { client_id: 'c1' },
    });
    const [t, type, e, body] = encodeEvent(event);
    expect(decodeEntry([e, body, t, type])).toEqual({ ok: true, event });
  });

  it('stores the legacy device types 主 and 副 as main and sub', () => {
    expect(normaliseDeviceType('主')).toBe('main');
    expect(normaliseDeviceType('副')).toBe('sub');
    expect(normaliseDeviceType('main')).toBe('main');
    expect(normaliseDeviceType('sub')).toBe('sub');
    const legacy = createEvent({
      type: 'DeviceRegistered',
      shopId: 's1',
      source: 'api',
      nowMs: 0,
      data: { client_id: 'pos', type: normaliseDeviceType('主'), token_id: 't1' },
    });
    const decoded = roundTrip(legacy);
    expect(decoded.ok && decoded.event.type === 'DeviceRegistered' && decoded.event.data.type).toBe('main');
  });
});

// ── Refusals ─────────────────────────────────────────────────────────────────────────────────────────────

describe('when a stream entry is malformed', () => {
  it('refuses an entry without an "e" field', () => {
    expect(reasonOf(decodeEntry(['t', 'NotifyRequested']))).toBe('entry has no "e" field');
    expect(reasonOf(decodeEntry([]))).toBe('entry has no "e" field');
  });

  it('refuses a body that is not JSON', () => {
    for (const body of ['', '{', 'not json', '{"id":1,}', '\u0000']) {
      expect(reasonOf(decodeEntry(['t', 'NotifyRequested', 'e', body]))).toBe('entry body is not JSON');
    }
  });

  it('refuses a body that is JSON but not an object', () => {
    for (const body of ['null', '42', '"text"', 'true']) {
      expect(reasonOf(decodeEntry(['e', body]))).toBe('event is not an object');
    }
    expect(reasonOf(decodeEntry(['e', '[]']))).toMatch(/unknown event type/);
  });

  const refusals = (cases: Array<[...Change, RegExp]>) => {
    for (const [path, value, reason] of cases) {
      expect(reasonOf(spoiled([path, value])), `${path} = ${String(value)}`).toMatch(reason);
    }
  };

  it('refuses an unknown type, naming it', () => {
    refusals([
      ['type', 'NotifySent', /^unknown event type "NotifySent"$/],
      ['type', REMOVED, /^unknown event type undefined$/],
      ['type', 'toString', /^unknown event type "toString"$/], // inherited from Object.prototype
    ]);
  });

  it('refuses a missing field, naming its path', () => {
    refusals([
      ['data.req_id', REMOVED, /\/data\/req_id: Expected required property/],
      ['data.recipients', REMOVED, /\/data\/recipients: Expected required property/],
      ['shop_id', REMOVED, /\/shop_id: Expected required property/],
      ['id', REMOVED, /\/id: Expected required property/],
      ['data', REMOVED, /\/data: Expected required property/],
    ]);
  });

  it('refuses a field of the wrong type, naming its path', () => {
    refusals([
      ['data.status', '0', /\/data\/status/],
      ['data.status', 1.5, /\/data\/status: Expected integer/],
      ['data.status', 2 ** 31, /\/data\/status/],
      ['data.data', 'dish', /\/data\/data/],
      ['data.user_info', ['a'], /\/data\/user_info/],
      ['data.table_id', 1.5, /\/data\/table_id/],
      ['data.table_id', { no: 1 }, /\/data\/table_id/],
      ['data.recipients', 'pos-1', /\/data\/recipients/],
      ['v', '1', /\/v/],
      ['at', 'yesterday', /\/at/],
      ['data.audience', 'everyone', /\/data\/audience/],
    ]);
  });

  it('refuses ids that break their pattern', () => {
    refusals([
      ['shop_id', 'shop 1', /\/shop_id: Expected string to match/],
      ['shop_id', '', /\/shop_id/],
      ['shop_id', '店铺', /\/shop_id/],
      ['data.from_client_id', 'a/b', /\/data\/from_client_id/],
      ['data.recipients', ['ok', 'not ok'], /\/data\/recipients\/1/],
      ['id', 'not-a-ulid', /\/id: Expected string to match/],
      ['id', '01jh0000000000000000000000', /\/id/],
      ['source', 'somewhere', /\/source/],
    ]);
  });

  it('refuses a message id that is not <event id>.<client id>', () => {
    const handled = (id: string) =>
      explainInvalidEvent(
        createEvent({
          type: 'MessageHandled',
          shopId: 's1',
          source: 'api',
          nowMs: 0,
          data: { id, status: 1 },
        }),
      );
    expect(handled(messageIdOf('01JH0000000000000000000000', 'pos-1'))).toBeNull();
    for (const id of ['01JH0000000000000000000000', '01JH0000000000000000000000.', 'x.pos-1', 'pos-1']) {
      expect(handled(id)).toMatch(/\/data\/id/);
    }
  });

  it('refuses a version newer than the catalogue knows', () => {
    refusals([['v', CATALOGUE.NotifyRequested.v + 1, /\/v: Expected integer to be less or equal/]]);
  });

  it('refuses the legacy device types once stored: they are normalised at the edge', () => {
    const reason = explainInvalidEvent({
      ...createEvent({
        type: 'DeviceRegistered',
        shopId: 's1',
        source: 'api',
        nowMs: 0,
        data: { client_id: 'pos', type: 'main', token_id: 't1' },
      }),
      data: { client_id: 'pos', type: '主', token_id: 't1' },
    });
    expect(reason).toMatch(/\/data\/type/);
  });

  it('refuses strings over their limits', () => {
    const long = (n: number) => 'x'.repeat(n);
    refusals([
      ['shop_id', long(65), /\/shop_id/],
      ['data.from_client_id', long(65), /\/data\/from_client_id/],
      ['data.req_id', long(129), /\/data\/req_id: Expected string length less or equal to 128/],
      ['data.req_id', '', /\/data\/req_id: Expected string length greater or equal to 1/],
      ['data.table_id', long(129), /\/data\/table_id/],
      ['data.type', long(65), /\/data\/type/],
      ['source', `edge:${long(129)}`, /\/source/],
      ['at', `2025-01-01T00:00:00.${'0'.repeat(40)}Z`, /\/at/],
    ]);
  });

  it('accepts strings exactly at their limits', () => {
    const decoded = spoiled(
      ['shop_id', 's'.repeat(64)],
      ['data.req_id', 'r'.repeat(128)],
      ['data.table_id', 't'.repeat(128)],
      ['data.type', 'y'.repeat(64)],
    );
    expect(decoded.ok).toBe(true);
  });

  it('gives a reason of a few problems, not the whole list', () => {
    const reason = reasonOf(spoiled(['data', {}]));
    expect(reason.split('; ')).toHaveLength(3);
  });

  it('never throws, whatever the body holds', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          anyEvent.map((e) => JSON.stringify(e).slice(0, -3)),
        ),
        (body) => {
          const decoded = decodeEntry(['t', 'x', 'e', body]);
          if (!decoded.ok) expect(decoded.reason.length).toBeGreaterThan(0);
        },
      ),
    );
  });
});
