// WebSocket protocol v1 (SPEC §3): the frames devices send, how their text is parsed, and the frames sent back.
import { type Static, Type } from '@sinclair/typebox';
import type { HandledBy } from './catalogue';
import { BrokerError } from './errors';
import {
  BusinessStatus,
  ClientId,
  compile,
  DeviceTypeInput,
  isNestedDeeperThan,
  JsonObject,
  MAX_JSON_DEPTH,
  MessageId,
  NotifyType,
  ReqId,
  ShopId,
  TableId,
  unstorableReason,
} from './schema';

const OptionalReqId = Type.Optional(ReqId);

export const LoginFrame = Type.Object({
  op: Type.Literal('login'),
  token: Type.String({ minLength: 1, maxLength: 4096 }),
  shop_id: Type.Optional(ShopId),
  client_id: Type.Optional(ClientId),
  type: Type.Optional(DeviceTypeInput),
  req_id: OptionalReqId,
});

export const NotifyFrame = Type.Object({
  op: Type.Literal('notify'),
  req_id: ReqId,
  table_id: TableId,
  type: NotifyType,
  status: Type.Optional(BusinessStatus),
  data: Type.Optional(JsonObject),
  user_info: Type.Optional(JsonObject),
});

export const AckFrame = Type.Object({
  op: Type.Literal('ack'),
  id: Type.Optional(MessageId),
  ids: Type.Optional(Type.Array(MessageId, { minItems: 1, maxItems: 500 })),
  /** `handled` notices received (SPEC §10), by the id of the device's own copy. */
  handled: Type.Optional(Type.Array(MessageId, { minItems: 1, maxItems: 500 })),
  req_id: OptionalReqId,
});

/** SPEC §3, §10: a main device handles the request a message of its own belongs to. */
export const HandleFrame = Type.Object({
  op: Type.Literal('handle'),
  id: MessageId,
  status: BusinessStatus,
  req_id: OptionalReqId,
});

export const PingFrame = Type.Object({ op: Type.Literal('ping'), req_id: OptionalReqId });
export const LogoutFrame = Type.Object({ op: Type.Literal('logout'), req_id: OptionalReqId });

export type LoginFrame = Static<typeof LoginFrame>;
export type NotifyFrame = Static<typeof NotifyFrame>;
export type AckFrame = Static<typeof AckFrame>;
export type HandleFrame = Static<typeof HandleFrame>;
export type ClientFrame =
  | LoginFrame
  | NotifyFrame
  | AckFrame
  | HandleFrame
  | Static<typeof PingFrame>
  | Static<typeof LogoutFrame>;
export type ClientOp = ClientFrame['op'];

const FRAME_CHECKERS = {
  login: compile(LoginFrame),
  notify: compile(NotifyFrame),
  ack: compile(AckFrame),
  handle: compile(HandleFrame),
  ping: compile(PingFrame),
  logout: compile(LogoutFrame),
} as const;

export const CLIENT_OPS = Object.keys(FRAME_CHECKERS) as ClientOp[];

export type ParsedFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; op: ClientOp | 'error'; reqId?: string; error: BrokerError };

function reqIdOf(value: Record<string, unknown>): string | undefined {
  const reqId = value.req_id;
  return typeof reqId === 'string' && reqId.length <= 128 ? reqId : undefined;
}

/**
 * Frame text → a validated frame, or the error to answer with. Pure; never throws.
 * `op:"error"` answers only frames without a usable op (SPEC §3); otherwise the reply carries the frame's op.
 */
export function parseClientFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, op: 'error', error: new BrokerError('MALFORMED_JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      op: 'error',
      error: new BrokerError('INVALID_INPUT', 'a frame must be a JSON object'),
    };
  }
  const record = value as Record<string, unknown>;
  const op = record.op;
  const reqId = reqIdOf(record);
  if (typeof op !== 'string' || !Object.hasOwn(FRAME_CHECKERS, op)) {
    const message = typeof op === 'string' ? `unknown op ${JSON.stringify(op.slice(0, 32))}` : 'missing op';
    return { ok: false, op: 'error', reqId, error: new BrokerError('UNKNOWN_OP', message) };
  }
  const checker = FRAME_CHECKERS[op as ClientOp];
  if (!checker.is(value)) {
    return {
      ok: false,
      op: op as ClientOp,
      reqId,
      error: new BrokerError('INVALID_INPUT', checker.explain(value)),
    };
  }
  if (op === 'ack' && record.id === undefined && record.ids === undefined && record.handled === undefined) {
    return {
      ok: false,
      op,
      reqId,
      error: new BrokerError('INVALID_INPUT', 'ack needs id, ids or handled'),
    };
  }
  // The NUL walk and the depth walk run only for notifies; the text test spares the NUL walk almost always
  // (a parsed string holds U+0000 only when the text has the escape: a raw NUL is not valid JSON).
  if (op === 'notify') {
    const reason =
      isNestedDeeperThan(record.data, MAX_JSON_DEPTH) ||
      isNestedDeeperThan(record.user_info, MAX_JSON_DEPTH) ||
      text.includes('\\u0000')
        ? unstorableReason(record)
        : null;
    if (reason !== null) return { ok: false, op, reqId, error: new BrokerError('INVALID_INPUT', reason) };
  }
  return { ok: true, frame: value as ClientFrame };
}

/** The message ids an ack frame acknowledges, deduplicated (its `handled` notices apart: ackedNotices). */
export function ackedIds(frame: AckFrame): string[] {
  const ids = new Set<string>(frame.ids ?? []);
  if (frame.id !== undefined) ids.add(frame.id);
  return [...ids];
}

/** The `handled` notices an ack frame acknowledges, by the copy's message id, deduplicated. */
export function ackedNotices(frame: AckFrame): string[] {
  return [...new Set(frame.handled ?? [])];
}

/** SPEC §10: another main (or the back office) handled the request the device's copy `id` belongs to. */
export interface HandledFrame {
  op: 'handled';
  id: string;
  event_id: string;
  status: number;
  handled_by: HandledBy;
  handled_at: string;
}

/**
 * The inbox and the push path name a copy's `handled` notice by the copy's id and this suffix: a message id cannot
 * hold '#', so the two never meet, and the edge tracks a notice apart from the message it is about.
 */
export const NOTICE_SUFFIX = '#h';

export function noticeIdOf(messageId: string): string {
  return `${messageId}${NOTICE_SUFFIX}`;
}

export function isNoticeId(id: string): boolean {
  return id.endsWith(NOTICE_SUFFIX);
}

/** A message for a main device, as pushed and as kept in the inbox until acked. */
export interface MessagePayload {
  id: string;
  shop_id: string;
  table_id: string | number | null;
  type: string;
  status: number;
  title: string;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
  from_client_id: string | null;
  to_client_id: string;
  created_at: string;
}

export interface MessageFrame extends Omit<MessagePayload, 'to_client_id'> {
  op: 'message';
  attempt: number;
}

export interface BroadcastFrame {
  op: 'broadcast';
  event_id: string;
  shop_id: string;
  table_id: string | number | null;
  type: string;
  status: number;
  title: string;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
  from_client_id: string | null;
  created_at: string;
}

export interface ReplyFrame {
  op: string;
  code: number;
  msg: string;
  time: string;
  req_id?: string;
  data?: Record<string, unknown>;
}

/** The message frame; `id` comes right after `op`, so an edge reads it from the text (messageIdOfFrame). */
export function messageFrameOf(payload: MessagePayload, attempt: number): MessageFrame {
  const { to_client_id: _recipient, id, ...fields } = payload;
  return { op: 'message', id, ...fields, attempt };
}

const MESSAGE_FRAME_HEAD = '{"op":"message","id":"';
const HANDLED_FRAME_HEAD = '{"op":"handled","id":"';

/** The `handled` frame; `id` comes right after `op`, like a message frame's. */
export function handledFrameOf(id: string, notice: Omit<HandledFrame, 'op' | 'id'>): HandledFrame {
  return { op: 'handled', id, ...notice };
}

/**
 * The id a serialised message frame or `handled` frame is tracked by (the message id; for a notice, the copy's id
 * with NOTICE_SUFFIX), or null for any other frame. Read from the text, without parsing it: the edge checks every
 * frame it writes against the ids it already wrote on the connection (SPEC §3, at most once per connection).
 * Message ids hold no quote.
 */
export function messageIdOfFrame(text: string): string | null {
  const isNotice = text.startsWith(HANDLED_FRAME_HEAD);
  if (!isNotice && !text.startsWith(MESSAGE_FRAME_HEAD)) return null;
  const from = MESSAGE_FRAME_HEAD.length; // both heads are as long
  const end = text.indexOf('"', from);
  if (end === -1) return null;
  return isNotice ? noticeIdOf(text.slice(from, end)) : text.slice(from, end);
}
