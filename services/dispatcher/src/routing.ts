// ◇ Who gets what from a batch of events. No I/O: the consumer calls these and sends the result; a push finds its
// recipient's connection as it is counted (deliver.ts, route-3.lua), a broadcast needs the shop's presence read. A device's backlog at login is the edge's to push (it holds the connection
// and knows what it already wrote on it), so logins ask nothing of the dispatcher.

import { FIRST_PUSH_LIMIT, type Pending, type Presence } from '#eventlog';
import { type BrokerEvent, broadcastFrameOf, type EventType, messagesOf, noticeIdOf } from '#events';

/**
 * An inbox entry (a message, or a `handled` notice) to push to its main device's connection, wherever that is
 * (found when the push is counted).
 */
export interface Push {
  item: Pending;
  shop: string;
  /** The recipient main. */
  client: string;
  /** Attempt limit of this series of pushes (see route-3.lua). */
  limit: number;
}

/**
 * A step of the batch, in log order. `retry`: a first push made by the notify's append that reached no edge (its
 * attempt 1 is counted): scheduled in BullMQ, as the dispatcher's own unreached pushes are.
 */
export type Step =
  | { kind: 'push'; push: Push }
  | { kind: 'retry'; push: Push }
  | { kind: 'broadcast'; route: Presence; frame: string };

export type OnlineByShop = ReadonlyMap<string, ReadonlyMap<string, Presence>>;

/**
 * The steps one event asks for. A sub's notify: a push per recipient main (SPEC §5.3; one without a connection is
 * skipped when counted), or, when its append made the first pushes (`unreached` given, notify-12.lua), a retry of
 * each that reached no edge. A main's or the back office's notify: nothing when its append broadcast it, else a
 * broadcast frame per connected sub (best effort), from `online`, the presence of the shops that
 * `shopsToBroadcast` named.
 */
export function stepsOf(event: BrokerEvent, online: OnlineByShop, unreached?: readonly string[]): Step[] {
  switch (event.type) {
    case 'NotifyRequested': {
      if (event.data.audience === 'mains')
        return messagesOf(event)
          .filter((payload) => unreached === undefined || unreached.includes(payload.to_client_id))
          .map((payload) => ({
            kind: unreached === undefined ? 'push' : 'retry',
            push: {
              item: { kind: 'message', id: payload.id, payload },
              shop: payload.shop_id,
              client: payload.to_client_id,
              limit: FIRST_PUSH_LIMIT,
            },
          }));
      if (unreached !== undefined) return []; // broadcast by its append
      const shop = online.get(event.shop_id);
      if (!shop) return [];
      const frame = JSON.stringify(broadcastFrameOf(event));
      const steps: Step[] = [];
      for (const route of shop.values()) {
        if (route.type === 'sub' && route.client_id !== event.data.from_client_id)
          steps.push({ kind: 'broadcast', route, frame });
      }
      return steps;
    }
    case 'DeviceLoggedIn':
    case 'DeviceRegistered':
    case 'DeviceRevoked':
    case 'DeviceTokenRotated':
    case 'ConnectionClosed':
    case 'MessageDelivered':
    case 'DeliveryFailed':
      return [];
    case 'MessageHandled': {
      // SPEC §10: a notice to every other main that holds a copy (the handle script filed them in the inbox).
      const d = event.data;
      if (d.event_id === undefined || d.by === undefined || !d.notices?.length) return [];
      const notice = { event_id: d.event_id, status: d.status, handled_by: d.by, handled_at: event.at };
      const clientOf = (copyId: string) => copyId.slice(copyId.indexOf('.') + 1);
      // Pushed by the handle script (handle-7.lua) when `unreached` is given: only those are retried.
      return d.notices
        .filter((copyId) => unreached === undefined || unreached.includes(clientOf(copyId)))
        .map((copyId) => ({
          kind: unreached === undefined ? 'push' : 'retry',
          push: {
            item: { kind: 'notice', id: noticeIdOf(copyId), copyId, notice },
            shop: event.shop_id,
            client: clientOf(copyId),
            limit: FIRST_PUSH_LIMIT,
          },
        }));
    }
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** The only events that ask for steps; the dispatcher's consumer skips the others without decoding them. */
export const ROUTED_TYPES = ['NotifyRequested', 'MessageHandled'] as const satisfies readonly EventType[];
const isRouted = (type: EventType): boolean => (ROUTED_TYPES as readonly EventType[]).includes(type);

/** Shops whose presence a batch needs read: those with a broadcast its append did not make (an earlier version's). */
export function shopsToBroadcast(
  entries: ReadonlyArray<{ event: BrokerEvent; unreached?: string[] }>,
): string[] {
  const shops = new Set<string>();
  for (const { event, unreached } of entries) {
    if (
      isRouted(event.type) &&
      event.type === 'NotifyRequested' &&
      event.data.audience !== 'mains' &&
      unreached === undefined
    )
      shops.add(event.shop_id);
  }
  return [...shops];
}
