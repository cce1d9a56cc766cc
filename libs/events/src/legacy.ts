// ◇ The original system's device protocol and back-office answers (SPEC §9), as the swoole server spoke them: its
// frames (login without a token, notify, logout, anything else echoed), its reply shape, its pushes to mains and
// its broadcasts to subs. Pure: the edge and the api call these; no I/O, no clock.
import { type Static, Type } from '@sinclair/typebox';
import { BrokerError } from './errors';
import type { BroadcastFrame, MessageFrame } from './frames';
import type { MessageView } from './rest';
import {
  BusinessStatus,
  compile,
  type DeviceType,
  DeviceTypeInput,
  Identifier,
  MessageId,
  NotifyType,
  normaliseDeviceType,
  TableId,
  unstorableReason,
} from './schema';

/**
 * The original's times are ThinkPHP's `date('Y-m-d H:i:s')` in its default time zone, PRC (UTC+8, no daylight
 * saving): the back office and the firmware read them as local time in China.
 */
const LEGACY_UTC_OFFSET_MS = 8 * 60 * 60 * 1000;

/** `YYYY-MM-DD HH:mm:ss` in the original's time zone (UTC+8). */
export function legacyTime(nowMs: number): string {
  const iso = new Date(nowMs + LEGACY_UTC_OFFSET_MS).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** An answer in the original's shape: `{code, msg, time, data}` (code 0 ok, 1 refused; `data` `[]` when empty). */
export interface LegacyAnswer {
  code: 0 | 1;
  msg: string;
  time: string;
  data: unknown;
}

export function legacyAnswer(code: 0 | 1, msg: string, nowMs: number, data: unknown = []): LegacyAnswer {
  return { code, msg, time: legacyTime(nowMs), data };
}

/**
 * PHP's json_encode as the original called it (JSON_UNESCAPED_UNICODE, so without JSON_UNESCAPED_SLASHES): `/` is
 * written `\/`. A '/' in JSON text only occurs inside strings, so replacing every one keeps the text valid JSON,
 * and a device comparing bytes with what the original sent finds the same.
 */
export function phpJson(value: unknown): string {
  return JSON.stringify(value).replaceAll('/', '\\/');
}

/** An error frame of the original: `{code:1, msg, time:"YYYY-MM-DD HH:mm:ss", data:[]}`. */
export function legacyErrorFrame(msg: string, nowMs: number): string {
  return phpJson(legacyAnswer(1, msg, nowMs));
}

/** SPEC §9.1: what a sub's notify to a shop without a main device is answered with, word for word. */
export const LEGACY_NO_MAIN_DEVICE = '店铺主设备未记录,请先联系商家完成主设备初始化';

/**
 * The original's ids were MySQL integers as often as strings (`店铺id:%d`), so an id may come as either; it is used
 * as the string an identifier of the broker is.
 */
const LegacyId = Type.Union([Identifier, Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })]);
/** PHP firmware sends numbers as strings as readily as numbers. */
const LegacyStatus = Type.Union([BusinessStatus, Type.String({ pattern: '^-?[0-9]{1,10}$' })]);
/** A free-form object; PHP encodes an empty array, its empty "object", as `[]`. */
const LegacyObject = Type.Union([
  Type.Record(Type.String(), Type.Unknown()),
  Type.Array(Type.Unknown(), { maxItems: 0 }),
  Type.Null(),
]);

const LegacyLoginSchema = Type.Object({
  op: Type.Literal('login'),
  shop_id: LegacyId,
  client_id: LegacyId,
  type: DeviceTypeInput,
});

/** A notify's fields, as the device's frame and the back office's notify_main carry them. */
const NOTIFY_FIELDS = {
  shop_id: LegacyId,
  from_client_id: LegacyId,
  from_client_type: Type.Optional(DeviceTypeInput),
  table_id: Type.Optional(Type.Union([TableId, Type.Null()])),
  type: NotifyType,
  status: Type.Optional(LegacyStatus),
  data: Type.Optional(LegacyObject),
  user_info: Type.Optional(LegacyObject),
};
const LegacyNotifySchema = Type.Object({ op: Type.Literal('notify'), ...NOTIFY_FIELDS });
const LegacyNotifyBody = Type.Object(NOTIFY_FIELDS);

const LegacyLogoutSchema = Type.Object({ op: Type.Literal('logout') });

const CHECKERS = {
  login: compile(LegacyLoginSchema),
  notify: compile(LegacyNotifySchema),
  logout: compile(LegacyLogoutSchema),
} as const;

export type LegacyOp = keyof typeof CHECKERS;

export interface LegacyLogin {
  op: 'login';
  shopId: string;
  clientId: string;
  type: DeviceType;
}

export interface LegacyNotify {
  op: 'notify';
  shopId: string;
  fromClientId: string;
  /** The type the frame claims for its sender, if it says. */
  fromType: DeviceType | undefined;
  table_id: string | number | null;
  type: string;
  status: number;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
}

export type LegacyFrame = LegacyLogin | LegacyNotify | { op: 'logout' };

export type ParsedLegacyFrame =
  | { kind: 'frame'; frame: LegacyFrame }
  /** A known op with fields the broker cannot take: answered with the original's error shape. */
  | { kind: 'refused'; op: LegacyOp; error: BrokerError }
  /** Not a JSON object with a known op: the original echoed it back unchanged (its test echo). */
  | { kind: 'echo'; isAdminCommand: boolean };

/**
 * Frame text → what to do with it. Pure; never throws. As the original: text that is not JSON, JSON that is not
 * an object, and an object without a known `op` are echoed. The original also ran `from_admin` commands found in
 * echoed text (reload, list connections, send to any socket); they are only flagged here, never run.
 */
export function parseLegacyFrame(text: string): ParsedLegacyFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return echo(text);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return echo(text);
  const op = (value as Record<string, unknown>).op;
  if (typeof op !== 'string' || !Object.hasOwn(CHECKERS, op)) return echo(text);
  const known = op as LegacyOp;
  const checker: { is(value: unknown): boolean; explain(value: unknown): string } = CHECKERS[known];
  if (!checker.is(value)) return refused(known, checker.explain(value));
  // The casts below are what `checker.is` just checked: the checker of `known`'s schema.
  switch (known) {
    case 'login':
      return { kind: 'frame', frame: loginOf(value as Static<typeof LegacyLoginSchema>) };
    case 'notify': {
      const notify = notifyOf(value as Static<typeof LegacyNotifyBody>);
      if (typeof notify === 'string') return refused(known, notify);
      return { kind: 'frame', frame: notify };
    }
    case 'logout':
      return { kind: 'frame', frame: { op: 'logout' } };
    default: {
      const never: never = known;
      return never;
    }
  }
}

function echo(text: string): ParsedLegacyFrame {
  return { kind: 'echo', isAdminCommand: text.includes('from_admin') };
}

function refused(op: LegacyOp, reason: string): ParsedLegacyFrame {
  return { kind: 'refused', op, error: new BrokerError('INVALID_INPUT', reason) };
}

const isIdentifier = compile(Identifier).is;

function loginOf(frame: Static<typeof LegacyLoginSchema>): LegacyLogin {
  return {
    op: 'login',
    shopId: String(frame.shop_id),
    clientId: String(frame.client_id),
    type: normaliseDeviceType(frame.type),
  };
}

const isNotifyBody = compile(LegacyNotifyBody);

/** SPEC §9.2: notify_main's fields (a form or JSON) as the broker records them, or why they cannot be. */
export function readLegacyNotify(value: unknown): LegacyNotify | string {
  return isNotifyBody.is(value) ? notifyOf(value) : isNotifyBody.explain(value);
}

/** The notify's fields as the broker records them, or why they cannot be. */
function notifyOf(frame: Static<typeof LegacyNotifyBody>): LegacyNotify | string {
  const status = typeof frame.status === 'string' ? Number(frame.status) : (frame.status ?? 0);
  if (!isStatus(status)) return '/status: expected a 32-bit integer';
  const shopId = String(frame.shop_id);
  const fromClientId = String(frame.from_client_id);
  // An integer id is always an identifier; a string one passed the schema. Checked again for the type's sake.
  if (!isIdentifier(shopId) || !isIdentifier(fromClientId)) return 'shop_id or from_client_id is not an id';
  const notify: LegacyNotify = {
    op: 'notify',
    shopId,
    fromClientId,
    fromType: frame.from_client_type === undefined ? undefined : normaliseDeviceType(frame.from_client_type),
    table_id: frame.table_id ?? null,
    type: frame.type,
    status,
    data: objectOf(frame.data),
    user_info: objectOf(frame.user_info),
  };
  return unstorableReason(notify) ?? notify;
}

const isStatus = compile(BusinessStatus).is;

function objectOf(value: Static<typeof LegacyObject> | undefined): Record<string, unknown> {
  return value === undefined || value === null || Array.isArray(value) ? {} : value;
}

/** What the original pushed to a main device for a sub's notify. */
export interface LegacyPush {
  id: string;
  status: number;
  table_id: string | number | null;
  type: string;
  title: string;
}

/** What a legacy sub device receives of a broadcast: the notify's fields, without `op`. */
export interface LegacyBroadcast {
  shop_id: string;
  table_id: string | number | null;
  type: string;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
  from_client_id: string | null;
  /** 主 for a main device's notify; null for the back office's broadcast, which the original did not have. */
  from_client_type: '主' | null;
  status: number;
}

/**
 * A frame pushed to a device (a v1 text from the dispatcher or the inbox) as the original would have written it,
 * with the id of the message it carries (null for a broadcast); null when the original protocol has no such frame
 * (it is not written).
 */
export function legacyPushOf(v1Frame: string): { text: string; messageId: string | null } | null {
  let frame: { op?: unknown };
  try {
    frame = JSON.parse(v1Frame) as { op?: unknown };
  } catch {
    return null;
  }
  // The edge writes what the dispatcher and the inbox made: `op` says which of the two frames it is.
  if (frame.op === 'message') {
    const m = frame as MessageFrame;
    const push: LegacyPush = {
      id: m.id,
      status: m.status,
      table_id: m.table_id,
      type: m.type,
      title: m.title,
    };
    return { text: phpJson(push), messageId: m.id };
  }
  if (frame.op === 'broadcast') {
    const b = frame as BroadcastFrame;
    const broadcast: LegacyBroadcast = {
      shop_id: b.shop_id,
      table_id: b.table_id,
      type: b.type,
      data: b.data,
      user_info: b.user_info,
      from_client_id: b.from_client_id,
      from_client_type: b.from_client_id === null ? null : '主',
      status: b.status,
    };
    return { text: phpJson(broadcast), messageId: null };
  }
  return null;
}

const LegacyDeal = Type.Object({ id: MessageId, status: LegacyStatus });
const isDeal = compile(LegacyDeal);

/** SPEC §9.2: deal's `id` and `status` (from the query, a form or JSON), or why they cannot be taken. */
export function readLegacyDeal(value: unknown): { id: string; status: number } | string {
  if (!isDeal.is(value)) return isDeal.explain(value);
  const status = Number(value.status);
  return isStatus(status) ? { id: value.id, status } : '/status: expected a 32-bit integer';
}

/** A message as the original's messageList listed a row of ws_message. */
export interface LegacyMessage {
  id: string;
  shop_id: string;
  table_id: string | number | null;
  type: string;
  data: Record<string, unknown>;
  user_info: Record<string, unknown>;
  from_client_id: string | null;
  to_client_id: string;
  /** Every message comes from a sub's notify (a main's notify is a broadcast, which is not stored). */
  from_client_type: '副';
  status: number;
  is_delivered: 0 | 1;
  create_time: string;
}

export function legacyMessageOf(message: MessageView): LegacyMessage {
  return {
    id: message.id,
    shop_id: message.shop_id,
    table_id: message.table_id,
    type: message.type,
    data: message.data,
    user_info: message.user_info,
    from_client_id: message.from_client_id,
    to_client_id: message.to_client_id,
    from_client_type: '副',
    status: message.status,
    is_delivered: message.delivered_at === null ? 0 : 1,
    create_time: legacyTime(Date.parse(message.created_at)),
  };
}
