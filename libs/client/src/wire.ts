// Frames as the device client reads and writes them: server text → a typed frame, acks → ack frames, and
// what a reply to a notify or a handle means. Pure. The frame shapes themselves live in #events and are not
// redefined here.
import type { AckFrame, BroadcastFrame, HandledBy, HandledFrame, MessageFrame, ReplyFrame } from '#events';

export type ServerFrame = MessageFrame | HandledFrame | BroadcastFrame | ReplyFrame;

/** The frame type a given `op` names: `message`, `handled` and `broadcast` are pushes, every other op a reply. */
export type FrameOf<Op extends string> = Op extends 'message'
  ? MessageFrame
  : Op extends 'handled'
    ? HandledFrame
    : Op extends 'broadcast'
      ? BroadcastFrame
      : ReplyFrame;

/** The edge refuses ack frames with more ids than this, in `ids` or in `handled` (AckFrame maxItems). */
export const ACK_IDS_PER_FRAME = 500;

/** A frame from the edge, tagged by kind: a reply's `op` is any string, so the op alone cannot tell them apart. */
export type ReadFrame =
  | { kind: 'message'; frame: MessageFrame }
  | { kind: 'handled'; frame: HandledFrame }
  | { kind: 'broadcast'; frame: BroadcastFrame }
  | { kind: 'reply'; frame: ReplyFrame };

/**
 * Server text → frame, or null when it is not a frame the protocol defines. Checks only what the client
 * relies on (an op, a message id, a reply code): the edge is trusted to send the shapes in #events.
 */
export function parseServerFrame(text: string): ReadFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  if (typeof record.op !== 'string') return null;
  // The casts below follow the checks of the fields the client reads; the rest is the edge's contract.
  if (record.op === 'message') {
    return typeof record.id === 'string' ? { kind: 'message', frame: value as MessageFrame } : null;
  }
  if (record.op === 'handled') {
    return typeof record.id === 'string' ? { kind: 'handled', frame: value as HandledFrame } : null;
  }
  if (record.op === 'broadcast') return { kind: 'broadcast', frame: value as BroadcastFrame };
  return typeof record.code === 'number' ? { kind: 'reply', frame: value as ReplyFrame } : null;
}

/**
 * Ids to acknowledge → ack frames: message ids go in `ids`, `handled` notices (by their copy's id) in `handled`
 * (SPEC §10). Duplicates are dropped, order is kept, and a frame holds at most ACK_IDS_PER_FRAME of each.
 */
export function ackFramesOf(messageIds: Iterable<string>, noticeIds: Iterable<string> = []): AckFrame[] {
  const ids = [...new Set(messageIds)];
  const handled = [...new Set(noticeIds)];
  const frames: AckFrame[] = [];
  for (let start = 0; start < ids.length || start < handled.length; start += ACK_IDS_PER_FRAME) {
    const frame: AckFrame = { op: 'ack' };
    if (start < ids.length) frame.ids = ids.slice(start, start + ACK_IDS_PER_FRAME);
    if (start < handled.length) frame.handled = handled.slice(start, start + ACK_IDS_PER_FRAME);
    frames.push(frame);
  }
  return frames;
}

/** SPEC §5.6: Redis is away and the outcome is unknown; the same req_id may be sent again safely. */
export const LOG_UNAVAILABLE_CODE = 503;

/** SPEC §10: the request was already handled by someone else; the reply's data says who, when, with what. */
export const ALREADY_HANDLED_CODE = 409;

/** What a reply to a request means: its result, a retry with the same req_id, or a refusal. */
export type RequestOutcome<T> =
  | { kind: 'done'; value: T }
  | { kind: 'retry' }
  | { kind: 'refused'; code: number; msg: string };

export interface NotifyResult {
  /** The NotifyRequested event the edge recorded. */
  event_id: string;
  /** The request id, generated when the caller gave none; the same one on every re-send. */
  req_id: string;
}

/** What a notify's reply means for the caller; a 503 is retried. */
export function notifyOutcomeOf(reply: ReplyFrame, reqId: string): RequestOutcome<NotifyResult> {
  if (reply.code === 0) {
    const eventId = reply.data?.event_id;
    if (typeof eventId === 'string') return { kind: 'done', value: { event_id: eventId, req_id: reqId } };
    return { kind: 'refused', code: 0, msg: 'reply without data.event_id' };
  }
  if (reply.code === LOG_UNAVAILABLE_CODE) return { kind: 'retry' };
  return { kind: 'refused', code: reply.code, msg: reply.msg };
}

/** The outcome of handle(): this device handled the request, or someone else had handled it first (SPEC §10). */
export type HandleResult =
  | {
      ok: true;
      /** The copy handled (the id given to handle()). */
      id: string;
      /** The request: the notify's event id, shared by every main's copy of it. */
      event_id: string;
    }
  | { ok: false; handled_by: HandledBy; handled_at: string; status: number };

/**
 * What a handle's reply means for the caller. A 409 with who handled the request first is an answer, not an
 * error. A 503 (event log or projections unavailable) is retried with backoff like a notify's: handling again is
 * safe (the same device with the same status gets code 0 again). Any other error is refused.
 * @param id the message id the handle named, for a success reply that does not repeat it
 */
export function handleOutcomeOf(reply: ReplyFrame, id: string): RequestOutcome<HandleResult> {
  const data = reply.data;
  if (reply.code === 0) {
    const eventId = data?.event_id;
    if (typeof eventId !== 'string') return { kind: 'refused', code: 0, msg: 'reply without data.event_id' };
    return {
      kind: 'done',
      value: { ok: true, id: typeof data?.id === 'string' ? data.id : id, event_id: eventId },
    };
  }
  if (reply.code === ALREADY_HANDLED_CODE && isHandledBy(data?.handled_by)) {
    const { handled_at: handledAt, status } = data;
    if (typeof handledAt === 'string' && typeof status === 'number') {
      return {
        kind: 'done',
        value: { ok: false, handled_by: data.handled_by, handled_at: handledAt, status },
      };
    }
  }
  if (reply.code === LOG_UNAVAILABLE_CODE) return { kind: 'retry' };
  return { kind: 'refused', code: reply.code, msg: reply.msg };
}

function isHandledBy(value: unknown): value is HandledBy {
  if (typeof value !== 'object' || value === null) return false;
  const { kind, client_id: clientId } = value as Record<string, unknown>;
  return kind === 'api' || (kind === 'device' && typeof clientId === 'string');
}
