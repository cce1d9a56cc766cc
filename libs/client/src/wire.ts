// Frames as the device client reads and writes them: server text → a typed frame, acks → ack frames, and
// what a notify reply means. Pure. The frame shapes themselves live in #events and are not redefined here.
import type { AckFrame, BroadcastFrame, MessageFrame, ReplyFrame } from '#events';

export type ServerFrame = MessageFrame | BroadcastFrame | ReplyFrame;

/** The frame type a given `op` names: `message` and `broadcast` are pushes, every other op is a reply. */
export type FrameOf<Op extends string> = Op extends 'message'
  ? MessageFrame
  : Op extends 'broadcast'
    ? BroadcastFrame
    : ReplyFrame;

/** The edge refuses ack frames with more ids than this (AckFrame `ids` maxItems). */
export const ACK_IDS_PER_FRAME = 500;

/** A frame from the edge, tagged by kind: a reply's `op` is any string, so the op alone cannot tell them apart. */
export type ReadFrame =
  | { kind: 'message'; frame: MessageFrame }
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
  if (record.op === 'broadcast') return { kind: 'broadcast', frame: value as BroadcastFrame };
  return typeof record.code === 'number' ? { kind: 'reply', frame: value as ReplyFrame } : null;
}

/** Ids to acknowledge → ack frames: duplicates dropped, order kept, at most ACK_IDS_PER_FRAME per frame. */
export function ackFramesOf(ids: Iterable<string>): AckFrame[] {
  const unique = [...new Set(ids)];
  const frames: AckFrame[] = [];
  for (let start = 0; start < unique.length; start += ACK_IDS_PER_FRAME) {
    frames.push({ op: 'ack', ids: unique.slice(start, start + ACK_IDS_PER_FRAME) });
  }
  return frames;
}

/** SPEC §5.6: Redis is away and the outcome is unknown; the same req_id may be sent again safely. */
export const LOG_UNAVAILABLE_CODE = 503;

export type NotifyOutcome =
  | { kind: 'recorded'; eventId: string }
  | { kind: 'retry' }
  | { kind: 'refused'; code: number; msg: string };

/** What a reply to a notify means for the caller. */
export function notifyOutcomeOf(reply: ReplyFrame): NotifyOutcome {
  if (reply.code === 0) {
    const eventId = reply.data?.event_id;
    if (typeof eventId === 'string') return { kind: 'recorded', eventId };
    return { kind: 'refused', code: 0, msg: 'reply without data.event_id' };
  }
  if (reply.code === LOG_UNAVAILABLE_CODE) return { kind: 'retry' };
  return { kind: 'refused', code: reply.code, msg: reply.msg };
}
