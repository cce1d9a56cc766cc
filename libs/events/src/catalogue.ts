// The event catalogue: every event type, its current version and its data schema. Types are inferred from the
// schemas, never written twice. Events may gain fields, never rename them.
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import {
  BusinessStatus,
  type Checker,
  ClientId,
  compile,
  DeviceType,
  IsoTime,
  JsonObject,
  MessageId,
  NotifyType,
  ReqId,
  ShopId,
  TableId,
} from './schema';

export const DeviceRegisteredData = Type.Object({
  client_id: ClientId,
  type: DeviceType,
  /** The id (jti) of the token minted for this registration; older tokens of the device stop working. */
  token_id: Type.String({ minLength: 1, maxLength: 64 }),
  /**
   * SPEC §9: the device may log in over the original system's protocol (no token; a client certificate from the
   * chain's CA). Absent on devices registered without it.
   */
  legacy: Type.Optional(Type.Boolean()),
});

export const DeviceRevokedData = Type.Object({ client_id: ClientId });

/**
 * A registered device's token replaced (a leaked token, a replaced handheld): the registration stays, with its
 * type, registered_at and pending messages; tokens carrying an earlier token id stop working.
 */
export const DeviceTokenRotatedData = Type.Object({
  client_id: ClientId,
  /** The id (jti) of the new token. */
  token_id: Type.String({ minLength: 1, maxLength: 64 }),
});

export const DeviceLoggedInData = Type.Object({
  client_id: ClientId,
  type: DeviceType,
  conn_id: Type.String({ minLength: 1, maxLength: 64 }),
  edge_id: Type.String({ minLength: 1, maxLength: 128 }),
  remote_addr: Type.String({ maxLength: 128 }),
  /** Logged in over the original system's protocol (SPEC §9.1); absent for v1. */
  legacy: Type.Optional(Type.Boolean()),
});

export const ConnectionClosedData = Type.Object({
  client_id: ClientId,
  conn_id: Type.String({ minLength: 1, maxLength: 64 }),
  edge_id: Type.String({ minLength: 1, maxLength: 128 }),
  /** logout, closed, replaced, revoked, operator, drain, edge_lost, … */
  reason: Type.String({ minLength: 1, maxLength: 64 }),
  close_code: Type.Optional(Type.Integer()),
});

export const NotifyRequestedData = Type.Object({
  req_id: ReqId,
  /** The sending device; null for the back office's broadcast. */
  from_client_id: Type.Union([ClientId, Type.Null()]),
  from_type: Type.Union([Type.Literal('main'), Type.Literal('sub'), Type.Literal('api')]),
  /** `mains`: one message per recipient, acked, retried. `subs`: a best-effort broadcast to online subs. */
  audience: Type.Union([Type.Literal('mains'), Type.Literal('subs')]),
  /**
   * SPEC §5.2: the mains registered (and not revoked) at this point of the shop's log, fixed when the event
   * was appended, in the same atomic step. Empty for a broadcast.
   */
  recipients: Type.Array(ClientId, { maxItems: 1000 }),
  table_id: Type.Union([TableId, Type.Null()]),
  type: NotifyType,
  status: BusinessStatus,
  data: JsonObject,
  user_info: JsonObject,
});

/**
 * How a delivery was known: `ack`, the device acked it (v1); `socket-write`, the edge wrote it to the socket of a
 * device that cannot ack (the original protocol, SPEC §9.1). Absent on events recorded before it was named: acks.
 */
export const DeliveryVia = Type.Union([Type.Literal('ack'), Type.Literal('socket-write')]);
export type DeliveryVia = Static<typeof DeliveryVia>;

export const MessageDeliveredData = Type.Object({
  client_id: ClientId,
  via: Type.Optional(DeliveryVia),
  ids: Type.Array(MessageId, { minItems: 1, maxItems: 500 }),
  /** Pushes each message took, by id, as counted when the ack arrived. */
  attempts: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
});

export const DeliveryFailedData = Type.Object({
  client_id: ClientId,
  id: MessageId,
  attempts: Type.Integer({ minimum: 0 }),
});

/** SPEC §10: who handled a request. Compared as its JSON, so its keys are always written in this order. */
export const Handler = Type.Union([
  Type.Object({ kind: Type.Literal('device'), client_id: ClientId }),
  Type.Object({ kind: Type.Literal('api') }),
]);

export type HandledBy = Static<typeof Handler>;

/**
 * SPEC §10: the request (the notify `event_id`) is handled, for every copy of it, by whoever handled copy `id`.
 * Events written before shared handling carry only `id` and `status`: the request is `id`'s event, the handler
 * the back office, and nobody is sent a notice.
 */
export const MessageHandledData = Type.Object({
  id: MessageId,
  status: BusinessStatus,
  event_id: Type.Optional(Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' })),
  by: Type.Optional(Handler),
  /** Copies whose main gets a `handled` notice (it was written the message, or acked it). */
  notices: Type.Optional(Type.Array(MessageId, { maxItems: 1000 })),
  /** Copies never written to their main: handled without delivery, never pushed from now on. */
  dropped: Type.Optional(Type.Array(MessageId, { maxItems: 1000 })),
});

/** Each type's data schema and current version. */
export const CATALOGUE = {
  DeviceRegistered: { v: 1, data: DeviceRegisteredData },
  DeviceRevoked: { v: 1, data: DeviceRevokedData },
  DeviceTokenRotated: { v: 1, data: DeviceTokenRotatedData },
  DeviceLoggedIn: { v: 1, data: DeviceLoggedInData },
  ConnectionClosed: { v: 1, data: ConnectionClosedData },
  NotifyRequested: { v: 1, data: NotifyRequestedData },
  MessageDelivered: { v: 1, data: MessageDeliveredData },
  DeliveryFailed: { v: 1, data: DeliveryFailedData },
  MessageHandled: { v: 1, data: MessageHandledData },
} as const;

export type EventType = keyof typeof CATALOGUE;
export const EVENT_TYPES = Object.keys(CATALOGUE) as EventType[];

export const Source = Type.String({ pattern: '^(api|cli|edge:.{1,128}|dispatcher:.{1,128})$' });

function envelope<T extends EventType, D extends TSchema>(type: T, data: D) {
  return Type.Object({
    id: Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$' }),
    type: Type.Literal(type),
    v: Type.Integer({ minimum: 1, maximum: CATALOGUE[type].v }),
    at: IsoTime,
    shop_id: ShopId,
    source: Source,
    data,
  });
}

export const ENVELOPES = {
  DeviceRegistered: envelope('DeviceRegistered', DeviceRegisteredData),
  DeviceRevoked: envelope('DeviceRevoked', DeviceRevokedData),
  DeviceTokenRotated: envelope('DeviceTokenRotated', DeviceTokenRotatedData),
  DeviceLoggedIn: envelope('DeviceLoggedIn', DeviceLoggedInData),
  ConnectionClosed: envelope('ConnectionClosed', ConnectionClosedData),
  NotifyRequested: envelope('NotifyRequested', NotifyRequestedData),
  MessageDelivered: envelope('MessageDelivered', MessageDeliveredData),
  DeliveryFailed: envelope('DeliveryFailed', DeliveryFailedData),
  MessageHandled: envelope('MessageHandled', MessageHandledData),
};

export const BrokerEventSchema = Type.Union(Object.values(ENVELOPES));

export type BrokerEvent = { [T in EventType]: Static<(typeof ENVELOPES)[T]> }[EventType];
export type EventOf<T extends EventType> = Extract<BrokerEvent, { type: T }>;
export type EventData<T extends EventType> = EventOf<T>['data'];

const checkers = Object.fromEntries(EVENT_TYPES.map((type) => [type, compile(ENVELOPES[type])])) as {
  [T in EventType]: Checker<EventOf<T>>;
};

export function isEventType(type: unknown): type is EventType {
  return typeof type === 'string' && Object.hasOwn(CATALOGUE, type);
}

/** Validates an event; returns null when valid, else a readable reason. */
export function explainInvalidEvent(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'event is not an object';
  const type = (value as { type?: unknown }).type;
  if (!isEventType(type)) return `unknown event type ${JSON.stringify(type)}`;
  const checker = checkers[type];
  return checker.is(value) ? null : checker.explain(value);
}

export { IsoTime, MessageId };
