// Rules the edge, the persister, the dispatcher and the audit must agree on: who receives a notify, and what
// message each recipient gets. Pure functions over events.
import type { BrokerEvent, EventOf } from './catalogue';
import type { BroadcastFrame, MessagePayload } from './frames';
import { messageIdOf } from './ids';
import type { DeviceType } from './schema';

export interface RegisteredDevice {
  type: DeviceType;
  token_id: string;
  registered_at: string;
  /** SPEC §9: may log in over the original protocol; absent when not. */
  legacy?: boolean;
}

/** The shop's device registry as a fold over its log: active devices only. */
export type Registry = ReadonlyMap<string, RegisteredDevice>;

export function evolveRegistry(registry: Registry, event: BrokerEvent): Registry {
  switch (event.type) {
    case 'DeviceRegistered': {
      const next = new Map(registry);
      next.set(event.data.client_id, {
        type: event.data.type,
        token_id: event.data.token_id,
        registered_at: event.at,
        ...(event.data.legacy === true ? { legacy: true } : {}),
      });
      return next;
    }
    case 'DeviceRevoked': {
      if (!registry.has(event.data.client_id)) return registry;
      const next = new Map(registry);
      next.delete(event.data.client_id);
      return next;
    }
    case 'DeviceTokenRotated': {
      // The device stays registered (and a recipient): only the token id it logs in with changes.
      const device = registry.get(event.data.client_id);
      if (!device) return registry;
      const next = new Map(registry);
      next.set(event.data.client_id, { ...device, token_id: event.data.token_id });
      return next;
    }
    case 'DeviceLoggedIn':
    case 'ConnectionClosed':
    case 'NotifyRequested':
    case 'MessageDelivered':
    case 'DeliveryFailed':
    case 'MessageHandled':
      return registry;
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** SPEC §5.2: a sub's notify goes to every main registered, and not revoked, before it in the shop's log. */
export function mainsOf(registry: Registry): string[] {
  const mains: string[] = [];
  for (const [clientId, device] of registry) if (device.type === 'main') mains.push(clientId);
  return mains.sort();
}

/** The title the legacy system showed: `桌id:<table> <type>`. */
export function titleOf(tableId: string | number | null, type: string): string {
  return tableId === null ? type : `桌id:${tableId} ${type}`;
}

/** One message per recipient of a notify, each with its own stable id. */
export function messagesOf(event: EventOf<'NotifyRequested'>): MessagePayload[] {
  const d = event.data;
  return d.recipients.map((recipient) => ({
    id: messageIdOf(event.id, recipient),
    shop_id: event.shop_id,
    table_id: d.table_id,
    type: d.type,
    status: d.status,
    title: titleOf(d.table_id, d.type),
    data: d.data,
    user_info: d.user_info,
    from_client_id: d.from_client_id,
    to_client_id: recipient,
    created_at: event.at,
  }));
}

export function broadcastFrameOf(event: EventOf<'NotifyRequested'>): BroadcastFrame {
  const d = event.data;
  return {
    op: 'broadcast',
    event_id: event.id,
    shop_id: event.shop_id,
    table_id: d.table_id,
    type: d.type,
    status: d.status,
    title: titleOf(d.table_id, d.type),
    data: d.data,
    user_info: d.user_info,
    from_client_id: d.from_client_id,
    created_at: event.at,
  };
}
