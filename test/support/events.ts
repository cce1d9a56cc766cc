// One shop's events written by hand, as the edge, the api and the dispatcher append them, for the given/when/then
// tests of the pure rules. Each event is stamped offsetMs after t0 with a deterministic id, so a test needs no
// clock. Whole logs built from operations are shop-log.ts's job.
import { createEvent, type DeviceType, type EventOf } from '#events';
import { fixedEventId } from './shop-log';

type NotifyDetails = Partial<EventOf<'NotifyRequested'>['data']>;

/** Builders of the shop's events; ids follow the order the events are built in, as in the log. */
export function eventsFor(shopId: string, t0 = Date.UTC(2025, 0, 1, 12)) {
  let built = 0;
  const at = (offsetMs: number) => ({
    nowMs: t0 + offsetMs,
    id: fixedEventId(t0 + offsetMs, ++built),
    shopId,
  });
  return {
    /** The time and id of the next event, for an event no builder below writes. */
    at,
    registered: (
      offsetMs: number,
      client_id: string,
      type: DeviceType = 'main',
      token_id = `${client_id}-t1`,
    ) =>
      createEvent({
        ...at(offsetMs),
        type: 'DeviceRegistered',
        source: 'api',
        data: { client_id, type, token_id },
      }),
    revoked: (offsetMs: number, client_id: string) =>
      createEvent({ ...at(offsetMs), type: 'DeviceRevoked', source: 'api', data: { client_id } }),
    rotated: (offsetMs: number, client_id: string, token_id: string) =>
      createEvent({
        ...at(offsetMs),
        type: 'DeviceTokenRotated',
        source: 'api',
        data: { client_id, token_id },
      }),
    loggedIn: (offsetMs: number, client_id: string, conn_id: string, type: DeviceType = 'main') =>
      createEvent({
        ...at(offsetMs),
        type: 'DeviceLoggedIn',
        source: 'edge:e1',
        data: { client_id, type, conn_id, edge_id: 'e1', remote_addr: '10.0.0.9' },
      }),
    closed: (offsetMs: number, client_id: string, conn_id: string, reason = 'logout') =>
      createEvent({
        ...at(offsetMs),
        type: 'ConnectionClosed',
        source: 'edge:e1',
        data: { client_id, conn_id, edge_id: 'e1', reason },
      }),
    /** A waiter's add_dish for table 12, unless the details say otherwise. */
    notify: (offsetMs: number, recipients: string[], details: NotifyDetails = {}) =>
      createEvent({
        ...at(offsetMs),
        type: 'NotifyRequested',
        source: 'edge:e1',
        data: {
          req_id: `r${offsetMs}`,
          from_client_id: 'waiter',
          from_type: 'sub',
          audience: 'mains',
          recipients,
          table_id: 12,
          type: 'add_dish',
          status: 1,
          data: { dish: 'dumplings' },
          user_info: { name: 'Li' },
          ...details,
        },
      }),
    delivered: (
      offsetMs: number,
      client_id: string,
      ids: string[],
      attempts: Record<string, number> = {},
      via?: 'ack' | 'socket-write',
    ) =>
      createEvent({
        ...at(offsetMs),
        type: 'MessageDelivered',
        source: 'edge:e1',
        data: { client_id, ...(via ? { via } : {}), ids, attempts },
      }),
    /** The dispatcher giving up on message `id` (its recipient is the part after the event id). */
    failed: (offsetMs: number, id: string, attempts: number) =>
      createEvent({
        ...at(offsetMs),
        type: 'DeliveryFailed',
        source: 'dispatcher:d1',
        data: { client_id: id.slice(27), id, attempts },
      }),
    /** The back office handling one copy, as before shared handling. */
    handled: (offsetMs: number, id: string, status: number) =>
      createEvent({ ...at(offsetMs), type: 'MessageHandled', source: 'api', data: { id, status } }),
  };
}

/** DeviceRegistered as the api appends it, now, with the token id `<client_id>-t1`. */
export const deviceRegistered = (shopId: string, client_id: string, type: DeviceType) =>
  createEvent({
    type: 'DeviceRegistered',
    shopId,
    source: 'api',
    data: { client_id, type, token_id: `${client_id}-t1` },
  });

/** A waiter's checkout as an edge hands it to the notify script, now: recipients empty, the script fills them in. */
export const notifyRequested = (shopId: string, { req_id, ...details }: NotifyDetails & { req_id: string }) =>
  createEvent({
    type: 'NotifyRequested',
    shopId,
    source: 'edge:e1',
    data: {
      req_id,
      from_client_id: 'waiter',
      from_type: 'sub',
      audience: 'mains',
      recipients: [],
      table_id: 'A1',
      type: 'checkout',
      status: 0,
      data: {},
      user_info: {},
      ...details,
    },
  });
