// REST API v1 bodies and answers (SPEC §6). The api validates with these and generates openapi.json from them.
import { type Static, Type } from '@sinclair/typebox';
import { DeliveryVia, Handler } from './catalogue';
import {
  BusinessStatus,
  ClientId,
  DeviceType,
  DeviceTypeInput,
  JsonObject,
  MessageId,
  NotifyType,
  ReqId,
  ShopId,
  TableId,
} from './schema';

export const RegisterDeviceBody = Type.Object({
  client_id: ClientId,
  type: DeviceTypeInput,
  /** SPEC §9: the device may log in over the original system's protocol (no token; a certificate of its CA). */
  legacy: Type.Optional(Type.Boolean()),
});
export const HandleMessageBody = Type.Object({ status: BusinessStatus });
export const HttpNotifyBody = Type.Object({
  from_client_id: ClientId,
  req_id: Type.Optional(ReqId),
  table_id: TableId,
  type: NotifyType,
  status: Type.Optional(BusinessStatus),
  data: Type.Optional(JsonObject),
  user_info: Type.Optional(JsonObject),
});
export const BroadcastBody = Type.Object({
  table_id: Type.Optional(TableId),
  type: NotifyType,
  status: Type.Optional(BusinessStatus),
  data: JsonObject,
  user_info: Type.Optional(JsonObject),
  req_id: Type.Optional(ReqId),
});

export const MessageState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivered'),
  Type.Literal('handled'),
]);
export const MessageStateFilter = Type.Union([MessageState, Type.Literal('all')]);
export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
export const MessagesQuery = Type.Object({
  state: Type.Optional(MessageStateFilter),
  limit: ListQuery.properties.limit,
  cursor: ListQuery.properties.cursor,
});
export const ConnectionsQuery = Type.Object({
  shop_id: Type.Optional(ShopId),
  limit: ListQuery.properties.limit,
  cursor: ListQuery.properties.cursor,
});

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

export const Device = Type.Object({
  client_id: ClientId,
  type: DeviceType,
  online: Type.Boolean(),
  revoked: Type.Boolean(),
  /** May log in over the original system's protocol (SPEC §9). */
  legacy: Type.Boolean(),
  registered_at: Time,
  last_seen_at: Nullable(Time),
});
export const RegisteredDevice = Type.Intersect([Device, Type.Object({ token: Type.String() })]);

export const Message = Type.Object({
  id: MessageId,
  /** SPEC §10: the notify this copy belongs to; every copy of it shares one handling. */
  event_id: Type.String(),
  shop_id: ShopId,
  table_id: Nullable(TableId),
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  data: JsonObject,
  user_info: JsonObject,
  from_client_id: Nullable(ClientId),
  to_client_id: ClientId,
  state: MessageState,
  attempts: Type.Integer(),
  created_at: Time,
  delivered_at: Nullable(Time),
  /** How the delivery is known: the device acked it, or it was written to a legacy device's socket (SPEC §9.1). */
  delivered_via: Nullable(DeliveryVia),
  handled_at: Nullable(Time),
  /** Who handled the request: a main device (`client_id`) or the back office; null until handled. */
  handled_by: Nullable(Handler),
});

export const Connection = Type.Object({
  conn_id: Type.String(),
  edge_id: Type.String(),
  shop_id: ShopId,
  client_id: ClientId,
  type: DeviceType,
  connected_at: Time,
  remote_addr: Type.String(),
  /** Speaks the original system's protocol (SPEC §9.1): the device has not moved to v1 yet. */
  legacy: Type.Boolean(),
});

export const MainOnline = Type.Object({
  online: Type.Boolean(),
  devices: Type.Array(Type.Object({ client_id: ClientId, conn_id: Type.String(), edge_id: Type.String() })),
});

export const Accepted = Type.Object({ event_id: Type.String(), req_id: Type.Optional(ReqId) });
/** A disconnect was sent to the edge holding the connection; the edge records ConnectionClosed. */
export const Disconnecting = Type.Object({ conn_id: Type.String(), edge_id: Type.String() });
export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

/** GET /healthz: the process answers (SPEC §6). */
export const Health = Type.Object({ status: Type.Literal('ok') });
/** GET /readyz: 200 when every check says "ok" and the service is not draining, else 503 with the same body. */
export const Readiness = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Record(Type.String(), Type.String(), {
    description: 'each dependency (and `service` while draining): "ok" or what is wrong with it',
  }),
  detail: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

export const listOf = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), next_cursor: Nullable(Type.String()) });

export type DeviceView = Static<typeof Device>;
export type MessageView = Static<typeof Message>;
export type ConnectionView = Static<typeof Connection>;
export type MessageStateFilter = Static<typeof MessageStateFilter>;
export type HttpNotifyBody = Static<typeof HttpNotifyBody>;
export type BroadcastBody = Static<typeof BroadcastBody>;
export type ReadinessView = Static<typeof Readiness>;
