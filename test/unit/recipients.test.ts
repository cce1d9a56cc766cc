// Who receives a notify (SPEC §5.2): the mains registered, and not revoked, before it in the shop's log. The fold
// is what a rebuild and the audit recompute, so it must agree with what the notify script fixed at append time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BrokerEvent,
  broadcastFrameOf,
  type DeviceType,
  type EventOf,
  evolveRegistry,
  mainsOf,
  messageIdOf,
  messagesOf,
  parseMessageId,
  type Registry,
  titleOf,
} from '#events';
import { eventsFor } from '../support/events';
import { type ShopOp, shopLog } from '../support/shop-log';

const SHOP = 'shop-1';
const T0 = Date.UTC(2025, 0, 1, 12);
const shop = eventsFor(SHOP, T0);
let n = 0; // one step of time per event
const registered = (client_id: string, type: DeviceType, token_id?: string) =>
  shop.registered(++n, client_id, type, token_id);
const revoked = (client_id: string) => shop.revoked(++n, client_id);
const rotated = (client_id: string, token_id: string) => shop.rotated(++n, client_id, token_id);
const loggedIn = (client_id: string, type: DeviceType) => shop.loggedIn(++n, client_id, `c-${n}`, type);
const notify = (recipients: string[], table_id: string | number | null = 7) =>
  shop.notify(++n, recipients, {
    table_id,
    status: 3,
    data: { dish: '宫保鸡丁', qty: 2 },
    user_info: { waiter: '小王' },
  });

const EMPTY: Registry = new Map();
const fold = (events: BrokerEvent[], from: Registry = EMPTY) => events.reduce(evolveRegistry, from);

/** given(events).when(events).thenMains(expected) */
function given(...history: BrokerEvent[]) {
  const before = fold(history);
  return {
    when(...events: BrokerEvent[]) {
      const after = fold(events, before);
      return {
        thenMains(expected: string[]) {
          expect(mainsOf(after)).toEqual(expected);
          return after;
        },
        thenUnchanged() {
          expect(after).toBe(before);
        },
      };
    },
  };
}

describe('when devices are registered and revoked', () => {
  it('lists a newly registered main', () => {
    given().when(registered('pos-1', 'main')).thenMains(['pos-1']);
  });

  it('lists no sub as a recipient', () => {
    given(registered('pos-1', 'main')).when(registered('waiter', 'sub')).thenMains(['pos-1']);
  });

  it('lists every main, sorted, whatever the registration order', () => {
    given(registered('pos-b', 'main'), registered('pos-c', 'main'))
      .when(registered('pos-a', 'main'))
      .thenMains(['pos-a', 'pos-b', 'pos-c']);
  });

  it('drops a revoked main', () => {
    given(registered('pos-1', 'main'), registered('pos-2', 'main'))
      .when(revoked('pos-1'))
      .thenMains(['pos-2']);
  });

  it('lists a revoked main again once it is registered again, with its new token', () => {
    const registry = given(registered('pos-1', 'main'), revoked('pos-1'))
      .when(registered('pos-1', 'main', 'pos-1-t2'))
      .thenMains(['pos-1']);
    expect(registry.get('pos-1')?.token_id).toBe('pos-1-t2');
  });

  it('keeps a main whose token is rotated, with the new token and its registration time', () => {
    const registration = registered('pos-1', 'main');
    const registry = given(registration).when(rotated('pos-1', 'pos-1-t2')).thenMains(['pos-1']);
    expect(registry.get('pos-1')).toEqual({
      type: 'main',
      token_id: 'pos-1-t2',
      registered_at: registration.at,
    });
  });

  it('keeps the registry as it was on a rotation of a device that is not registered', () => {
    given(registered('pos-1', 'main'), revoked('pos-1')).when(rotated('pos-1', 'pos-1-t2')).thenUnchanged();
  });

  it('follows a device re-registered as the other type', () => {
    given(registered('dev', 'main'), revoked('dev')).when(registered('dev', 'sub')).thenMains([]);
  });

  it('keeps the registry as it was on a revoke of an unknown device', () => {
    given(registered('pos-1', 'main')).when(revoked('stranger')).thenUnchanged();
  });

  it('keeps the registry as it was on events that are not about registration', () => {
    given(registered('pos-1', 'main'))
      .when(loggedIn('pos-1', 'main'), notify(['pos-1']))
      .thenUnchanged();
  });

  it('does not change the registry it was given', () => {
    const before = fold([registered('pos-1', 'main')]);
    fold([revoked('pos-1'), registered('pos-2', 'main')], before);
    expect([...before.keys()]).toEqual(['pos-1']);
  });

  it('records when the device was registered', () => {
    const event = registered('pos-1', 'main');
    expect(fold([event]).get('pos-1')).toEqual({
      type: 'main',
      token_id: 'pos-1-t1',
      registered_at: event.at,
    });
  });
});

describe('when the log of a shop is folded', () => {
  const op: fc.Arbitrary<ShopOp> = fc.oneof(
    fc.record({
      op: fc.constant('register' as const),
      client: fc.nat(5),
      type: fc.constantFrom<DeviceType>('main', 'sub'),
    }),
    fc.record({ op: fc.constant('revoke' as const), client: fc.nat(5) }),
    fc.record({ op: fc.constant('login' as const), client: fc.nat(5) }),
    fc.record({ op: fc.constant('notify' as const), client: fc.nat(5) }),
    fc.record({ op: fc.constant('ack' as const), client: fc.nat(5), count: fc.nat(3) }),
  );

  it("reproduces the recipients each notify was given when it was appended (a rebuild's view)", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        let registry: Registry = EMPTY;
        for (const event of shopLog(ops, { shopId: SHOP })) {
          if (event.type === 'NotifyRequested' && event.data.audience === 'mains') {
            expect(event.data.recipients).toEqual(mainsOf(registry));
          }
          registry = evolveRegistry(registry, event);
        }
      }),
    );
  });
});

describe('when a notify becomes messages', () => {
  it('makes one message per recipient, each with its own id', () => {
    const event = notify(['pos-1', 'pos-2']);
    const messages = messagesOf(event);
    expect(messages.map((m) => m.to_client_id)).toEqual(['pos-1', 'pos-2']);
    expect(messages.map((m) => m.id)).toEqual([
      messageIdOf(event.id, 'pos-1'),
      messageIdOf(event.id, 'pos-2'),
    ]);
    for (const message of messages) {
      expect(parseMessageId(message.id)).toEqual({ eventId: event.id, clientId: message.to_client_id });
    }
  });

  it('carries what the device sent, exactly', () => {
    const event = notify(['pos-1'], '12');
    expect(messagesOf(event)).toEqual([
      {
        id: messageIdOf(event.id, 'pos-1'),
        shop_id: SHOP,
        table_id: '12',
        type: 'add_dish',
        status: 3,
        title: '桌id:12 add_dish',
        data: { dish: '宫保鸡丁', qty: 2 },
        user_info: { waiter: '小王' },
        from_client_id: 'waiter',
        to_client_id: 'pos-1',
        created_at: event.at,
      },
    ]);
  });

  it('makes no message for a broadcast', () => {
    const event: EventOf<'NotifyRequested'> = {
      ...notify([]),
      data: { ...notify([]).data, audience: 'subs', from_type: 'main', from_client_id: 'pos-1' },
    };
    expect(messagesOf(event)).toEqual([]);
    expect(broadcastFrameOf(event)).toMatchObject({ op: 'broadcast', event_id: event.id, table_id: 7 });
  });

  it('gives the same messages however often the event is processed', () => {
    const event = notify(['pos-1', 'pos-2', 'pos-3']);
    expect(messagesOf(event)).toEqual(messagesOf(JSON.parse(JSON.stringify(event)) as typeof event));
  });

  it('titles a message the legacy way', () => {
    expect(titleOf(12, 'checkout')).toBe('桌id:12 checkout');
    expect(titleOf('A-3', 'gift')).toBe('桌id:A-3 gift');
    expect(titleOf(null, 'discount')).toBe('discount');
  });
});
