import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BrokerEvent, createEvent, messageIdOf } from '#events';
import {
  applyChanges,
  deviceKey,
  emptyView,
  evolve,
  type ProjectionView,
  project,
  type RowChange,
} from '#persister';
import { eventsFor } from '../support/events';
import { shopLog, shopOpsArbitrary } from '../support/shop-log';

const SHOP = 'shop-1';
const T0 = Date.UTC(2025, 0, 1, 12);

/** given(events).when(events).thenRows(view): the emmett shape, over the in-memory fold. */
function given(...history: BrokerEvent[]) {
  const view = emptyView();
  let position = 0;
  const fold = (events: BrokerEvent[]) => {
    for (const event of events) evolve(view, event, { shard: 0, streamId: `${T0}-${position++}` });
  };
  fold(history);
  return {
    when(...events: BrokerEvent[]) {
      fold(events);
      return { thenRows: (check: (view: ProjectionView) => void) => check(view) };
    },
  };
}

const { at, registered, revoked, rotated, notify, delivered, failed, handled, loggedIn, closed } = eventsFor(
  SHOP,
  T0,
);
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

describe('when a sub device notifies the mains', () => {
  it('yields one pending row per recipient, keyed by the message id', () => {
    const event = notify(10, ['pos-1', 'pos-2']);
    given(registered(1, 'pos-1'), registered(2, 'pos-2'))
      .when(event)
      .thenRows((view) => {
        expect([...view.messages.keys()].sort()).toEqual([
          messageIdOf(event.id, 'pos-1'),
          messageIdOf(event.id, 'pos-2'),
        ]);
        expect(view.messages.get(messageIdOf(event.id, 'pos-2'))).toEqual({
          id: messageIdOf(event.id, 'pos-2'),
          event_id: event.id,
          shop_id: SHOP,
          table_id: 12,
          type: 'add_dish',
          title: '桌id:12 add_dish',
          status: 1,
          data: { dish: 'dumplings' },
          user_info: { name: 'Li' },
          from_client_id: 'waiter',
          to_client_id: 'pos-2',
          state: 'pending',
          attempts: 0,
          created_at: iso(10),
          delivered_at: null,
          delivered_via: null,
          handled_at: null,
          handled_by: null,
          failed_at: null,
        });
      });
  });

  it('yields no message rows for a broadcast to subs, only its archive entry', () => {
    const event = notify(10, [], { audience: 'subs' });
    given()
      .when(event)
      .thenRows((view) => {
        expect(view.messages.size).toBe(0);
        expect(view.events.get(event.id)?.type).toBe('NotifyRequested');
      });
  });
});

describe('when a message is acked', () => {
  const event = notify(10, ['pos-1']);
  const id = messageIdOf(event.id, 'pos-1');

  it('marks it delivered with the attempts the ack counted', () => {
    given(event)
      .when(delivered(20, 'pos-1', [id], { [id]: 3 }))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({
          state: 'delivered',
          delivered_at: iso(20),
          attempts: 3,
        });
      });
  });

  it('marks a late second ack once: delivered_at stays the first', () => {
    given(event, delivered(20, 'pos-1', [id], { [id]: 1 }))
      .when(delivered(30, 'pos-1', [id], { [id]: 4 }))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({
          state: 'delivered',
          delivered_at: iso(20),
          attempts: 1,
        });
      });
  });

  it('says how the delivery is known: an ack, or (SPEC §9.1) a write to a legacy device', () => {
    const legacy = notify(11, ['pos-1']);
    const legacyId = messageIdOf(legacy.id, 'pos-1');
    given(event, legacy)
      .when(delivered(20, 'pos-1', [id], {}, 'ack'), delivered(21, 'pos-1', [legacyId], {}, 'socket-write'))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ state: 'delivered', delivered_via: 'ack' });
        expect(view.messages.get(legacyId)).toMatchObject({
          state: 'delivered',
          delivered_via: 'socket-write',
        });
      });
  });

  it('counts a delivery recorded before `via` was named as an ack, and keeps the first one', () => {
    given(event, delivered(20, 'pos-1', [id]))
      .when(delivered(30, 'pos-1', [id], {}, 'socket-write'))
      .thenRows((view) => expect(view.messages.get(id)?.delivered_via).toBe('ack'));
  });

  it('keeps a message handled when the ack arrives after the back office handled it', () => {
    given(event, handled(15, id, 7))
      .when(delivered(20, 'pos-1', [id]))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ state: 'handled', status: 7, delivered_at: iso(20) });
      });
  });
});

describe('when the retry budget runs out', () => {
  const event = notify(10, ['pos-1']);
  const id = messageIdOf(event.id, 'pos-1');

  it('records failed_at and the attempts, and the message stays pending', () => {
    given(event)
      .when(failed(20, id, 8))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ state: 'pending', failed_at: iso(20), attempts: 8 });
      });
  });

  it('still lets the device ack it after its next login', () => {
    given(event, failed(20, id, 8))
      .when(delivered(40, 'pos-1', [id], { [id]: 1 }))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ state: 'delivered', failed_at: iso(20), attempts: 8 });
      });
  });
});

describe('when the back office handles a message', () => {
  const event = notify(10, ['pos-1']);
  const id = messageIdOf(event.id, 'pos-1');

  it('marks it handled with the new business status', () => {
    given(event)
      .when(handled(20, id, 2))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ state: 'handled', handled_at: iso(20), status: 2 });
      });
  });

  it('lets the first handle win, whichever order the events are folded in (SPEC §10)', () => {
    given(event, handled(20, id, 2))
      .when(handled(30, id, 3))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({
          handled_at: iso(20),
          status: 2,
          handled_by: { kind: 'api' },
        });
      });
    given(event, handled(30, id, 3))
      .when(handled(20, id, 2))
      .thenRows((view) => {
        expect(view.messages.get(id)).toMatchObject({ handled_at: iso(20), status: 2 });
      });
  });
});

describe('when a cashier handles a request that has a copy for each main', () => {
  const event = notify(10, ['pos-1', 'pos-2', 'pos-3']);
  const [a, b, c] = ['pos-1', 'pos-2', 'pos-3'].map((m) => messageIdOf(event.id, m)) as [
    string,
    string,
    string,
  ];
  const byA = { kind: 'device' as const, client_id: 'pos-1' };

  it('handles every copy it names with the same status, time and handler', () => {
    const handle = createEvent({
      ...at(20),
      type: 'MessageHandled',
      source: 'edge:e1',
      data: { id: a, status: 4, event_id: event.id, by: byA, notices: [b], dropped: [c] },
    });
    given(event, delivered(15, 'pos-2', [b]))
      .when(handle)
      .thenRows((view) => {
        for (const copy of [a, b, c])
          expect(view.messages.get(copy)).toMatchObject({
            state: 'handled',
            status: 4,
            handled_at: iso(20),
            handled_by: byA,
          });
        expect(view.messages.get(b)?.delivered_at).toBe(iso(15));
        expect(view.messages.get(c)?.delivered_at).toBeNull(); // handled without delivery
      });
  });
});

describe('when devices are registered and revoked', () => {
  it('clears revoked_at and takes the new token on a re-registration', () => {
    given(registered(1, 'pos-1', 'main', 'tok-1'), revoked(2, 'pos-1'))
      .when(registered(3, 'pos-1', 'sub', 'tok-2'))
      .thenRows((view) => {
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))).toEqual({
          shop_id: SHOP,
          client_id: 'pos-1',
          type: 'sub',
          token_id: 'tok-2',
          legacy: false,
          registered_at: iso(3),
          token_rotated_at: null,
          revoked_at: null,
          last_seen_at: null,
        });
      });
  });

  it('keeps the legacy mark of a registration (SPEC §9), and drops it with a registration without one', () => {
    const legacy = createEvent({
      ...at(1),
      type: 'DeviceRegistered',
      source: 'cli',
      data: { client_id: 'pos-1', type: 'main', token_id: 'tok-1', legacy: true },
    });
    given(legacy)
      .when()
      .thenRows((view) => {
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.legacy).toBe(true);
      });
    given(legacy, revoked(2, 'pos-1'))
      .when(registered(3, 'pos-1'))
      .thenRows((view) => expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.legacy).toBe(false));
  });

  it('records the first revoke only', () => {
    given(registered(1, 'pos-1'), revoked(2, 'pos-1'))
      .when(revoked(3, 'pos-1'))
      .thenRows((view) => expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.revoked_at).toBe(iso(2)));
  });

  it('does not revert a re-registration when an older registration or revoke is processed again', () => {
    const first = registered(1, 'pos-1', 'main', 'tok-1');
    const revocation = revoked(2, 'pos-1');
    given(first, revocation, registered(3, 'pos-1', 'main', 'tok-2'))
      .when(first, revocation)
      .thenRows((view) => {
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))).toMatchObject({
          token_id: 'tok-2',
          revoked_at: null,
        });
      });
  });
});

describe("when a device's token is rotated", () => {
  it('keeps the device, its type, registration and messages, and takes the new token', () => {
    const message = notify(2, ['pos-1']);
    given(registered(1, 'pos-1', 'main', 'tok-1'), message)
      .when(rotated(3, 'pos-1', 'tok-2'))
      .thenRows((view) => {
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))).toEqual({
          shop_id: SHOP,
          client_id: 'pos-1',
          type: 'main',
          token_id: 'tok-2',
          legacy: false,
          registered_at: iso(1),
          token_rotated_at: iso(3),
          revoked_at: null,
          last_seen_at: null,
        });
        expect(view.messages.get(messageIdOf(message.id, 'pos-1'))?.state).toBe('pending');
      });
  });

  it('does not revert a later rotation when an earlier one is processed again', () => {
    const first = rotated(2, 'pos-1', 'tok-2');
    given(registered(1, 'pos-1', 'main', 'tok-1'), first, rotated(3, 'pos-1', 'tok-3'))
      .when(first)
      .thenRows((view) =>
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))).toMatchObject({
          token_id: 'tok-3',
          token_rotated_at: iso(3),
        }),
      );
  });

  it('changes neither a revoked device nor a later registration', () => {
    const rotation = rotated(2, 'pos-1', 'tok-2');
    given(registered(1, 'pos-1', 'main', 'tok-1'), rotation, revoked(3, 'pos-1'))
      .when(rotated(4, 'pos-1', 'tok-late'))
      .thenRows((view) => expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.token_id).toBe('tok-2'));
    given(
      registered(1, 'pos-1', 'main', 'tok-1'),
      rotation,
      revoked(3, 'pos-1'),
      registered(5, 'pos-1', 'sub', 'tok-5'),
    )
      .when(rotation)
      .thenRows((view) =>
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))).toMatchObject({
          type: 'sub',
          token_id: 'tok-5',
          token_rotated_at: null,
        }),
      );
  });
});

describe('when a device logs in and out', () => {
  it('opens a connection and moves last_seen_at forward', () => {
    given(registered(1, 'pos-1'))
      .when(loggedIn(5, 'pos-1', 'c1'), closed(9, 'pos-1', 'c1', 'logout'))
      .thenRows((view) => {
        expect(view.connections.get('c1')).toEqual({
          conn_id: 'c1',
          edge_id: 'e1',
          shop_id: SHOP,
          client_id: 'pos-1',
          type: 'main',
          remote_addr: '10.0.0.9',
          connected_at: iso(5),
          closed_at: iso(9),
          close_reason: 'logout',
        });
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.last_seen_at).toBe(iso(9));
      });
  });

  it('never moves last_seen_at back when an older login is processed again', () => {
    const login = loggedIn(5, 'pos-1', 'c1');
    given(registered(1, 'pos-1'), login, closed(9, 'pos-1', 'c1'))
      .when(login)
      .thenRows((view) => {
        expect(view.devices.get(deviceKey(SHOP, 'pos-1'))?.last_seen_at).toBe(iso(9));
        expect(view.connections.get('c1')?.closed_at).toBe(iso(9));
      });
  });
});

describe('when any event is projected', () => {
  it('archives it with its shard and stream position', () => {
    const event = registered(1, 'pos-1');
    const changes: RowChange[] = project(event, { shard: 3, streamId: '1735732800001-7' });
    expect(changes[0]).toEqual({
      kind: 'archiveEvent',
      row: {
        id: event.id,
        shard: 3,
        stream_ms: 1735732800001,
        stream_seq: 7,
        shop_id: SHOP,
        type: 'DeviceRegistered',
        v: 1,
        at: iso(1),
        source: 'api',
        data: event.data,
      },
    });
  });
});

function foldAll(events: BrokerEvent[], replays: number[] = []): ProjectionView {
  const view = emptyView();
  events.forEach((event, i) => {
    const origin = { shard: 0, streamId: `${T0}-${i}` };
    applyChanges(view, project(event, origin));
    // Reprocess an earlier event here: what a redelivery after a crash, or a replayed stream, does.
    for (const r of replays) {
      const earlier = events[r % (i + 1)]!;
      applyChanges(view, project(earlier, { shard: 0, streamId: `${T0}-${r % (i + 1)}` }));
    }
  });
  return view;
}

describe('when events are processed more than once', () => {
  it('leaves the same rows whichever events are processed again, and when', () => {
    fc.assert(
      fc.property(shopOpsArbitrary(), fc.array(fc.nat(100), { maxLength: 3 }), (ops, replays) => {
        const events = shopLog(ops, { shopId: SHOP });
        expect(foldAll(events, replays)).toEqual(foldAll(events));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves the same rows when the whole log is replayed on top of itself', () => {
    fc.assert(
      fc.property(shopOpsArbitrary(), (ops) => {
        const events = shopLog(ops, { shopId: SHOP });
        const view = foldAll(events);
        events.forEach((event, i) => {
          applyChanges(view, project(event, { shard: 0, streamId: `${T0}-${i}` }));
        });
        expect(view).toEqual(foldAll(events));
      }),
      { numRuns: 200 },
    );
  });
});
