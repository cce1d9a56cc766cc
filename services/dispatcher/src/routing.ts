// ◇ Who gets what from a batch of events, given who is connected where. No I/O: the consumer reads presence,
// calls these, and sends the result. A device's backlog at login is the edge's to push (it holds the connection
// and knows what it already wrote on it), so logins ask nothing of the dispatcher.

import { FIRST_PUSH_LIMIT, type Presence } from '#eventlog';
import { type BrokerEvent, broadcastFrameOf, type EventType, type MessagePayload, messagesOf } from '#events';

/** A message to push to a main device's live connection. */
export interface Push {
  payload: MessagePayload;
  route: Presence;
  /** Attempt limit of this series of pushes (see push-2.lua). */
  limit: number;
}

/** A step of the batch, in log order. */
export type Step = { kind: 'push'; push: Push } | { kind: 'broadcast'; route: Presence; frame: string };

export type OnlineByShop = ReadonlyMap<string, ReadonlyMap<string, Presence>>;

/**
 * The steps one event asks for. A sub's notify: a push per connected recipient main (SPEC §5.3). A main's or the
 * back office's notify: a broadcast frame per connected sub (best effort).
 */
export function stepsOf(event: BrokerEvent, online: OnlineByShop): Step[] {
  const shop = online.get(event.shop_id);
  if (!shop) return [];
  switch (event.type) {
    case 'NotifyRequested': {
      if (event.data.audience === 'mains') {
        const steps: Step[] = [];
        for (const payload of messagesOf(event)) {
          const route = shop.get(payload.to_client_id);
          if (route && route.type === 'main')
            steps.push({ kind: 'push', push: { payload, route, limit: FIRST_PUSH_LIMIT } });
        }
        return steps;
      }
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
    case 'ConnectionClosed':
    case 'MessageDelivered':
    case 'DeliveryFailed':
    case 'MessageHandled':
      return [];
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** The only events that ask for steps; the dispatcher's consumer skips the others without decoding them. */
export const ROUTED_TYPES = ['NotifyRequested'] as const satisfies readonly EventType[];
const isRouted = (type: EventType): boolean => (ROUTED_TYPES as readonly EventType[]).includes(type);

/** Shops whose presence a batch needs. */
export function shopsToRoute(events: readonly BrokerEvent[]): string[] {
  const shops = new Set<string>();
  for (const event of events) {
    if (isRouted(event.type)) shops.add(event.shop_id);
  }
  return [...shops];
}
