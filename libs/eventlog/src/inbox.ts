// The inbox: the undelivered messages of each device, kept in Redis in log order until the device acks them
// (written by the notify script, emptied by the ack script). The dispatcher reads it for backlogs and counts
// pushes in it.
import {
  type HandledFrame,
  handledFrameOf,
  isNoticeId,
  type Keys,
  type MessagePayload,
  messageFrameOf,
  NOTICE_SUFFIX,
  paddedStreamId,
} from '#events';
import type { RedisClient } from '#runtime';
import type { Presence } from './append';
import { defineScripts, runScript } from './scripts';

/** What the notify script stores per message: the payload without its id and recipient (both in the key). */
type StoredPayload = Omit<MessagePayload, 'id' | 'to_client_id'>;

/** A `handled` notice as the handle script stores it: the frame without op and id. */
export type NoticePayload = Omit<HandledFrame, 'op' | 'id'>;

/**
 * An inbox entry: a message (id: the message id), or a `handled` notice (id: the copy's id with NOTICE_SUFFIX;
 * `copyId` is the copy it is about, the `id` of its frame).
 */
export type Pending =
  | { kind: 'message'; id: string; payload: MessagePayload }
  | { kind: 'notice'; id: string; copyId: string; notice: NoticePayload };

/** An inbox value is "<padded stream id (24)>|<JSON>". */
function pendingOf(id: string, value: string): Pending {
  const json = value.slice(25);
  if (isNoticeId(id)) {
    const copyId = id.slice(0, -NOTICE_SUFFIX.length);
    return { kind: 'notice', id, copyId, notice: JSON.parse(json) as NoticePayload };
  }
  return {
    kind: 'message',
    id,
    payload: { ...(JSON.parse(json) as StoredPayload), id, to_client_id: id.slice(id.indexOf('.') + 1) },
  };
}

/** The frame that pushes an inbox entry, as attempt `attempt`. */
export function frameOf(item: Pending, attempt: number): string {
  return JSON.stringify(
    item.kind === 'message'
      ? messageFrameOf(item.payload, attempt)
      : handledFrameOf(item.copyId, item.notice),
  );
}

/**
 * The frames of a backlog read with its pushes counted (`id`, `attempt`, inbox value, in log order): messages
 * first, then `handled` notices (SPEC §10).
 */
export function backlogFramesOf(
  entries: ReadonlyArray<{ id: string; attempt: number; value: string }>,
): string[] {
  const messages: string[] = [];
  const notices: string[] = [];
  for (const { id, attempt, value } of entries) {
    if (attempt <= 0) continue;
    const pending = pendingOf(id, value);
    (pending.kind === 'message' ? messages : notices).push(frameOf(pending, attempt));
  }
  return messages.concat(notices);
}

/** A first push (live, or a backlog at login) always goes out unless acked; a retry budget counts from it. */
export const FIRST_PUSH_LIMIT = Number.MAX_SAFE_INTEGER;

export interface InboxItem {
  id: string;
  /** Attempt limit: push only while the message's push count is below it. */
  limit: number;
}

export class Inbox {
  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
  ) {
    defineScripts(redis);
  }

  /**
   * Every undelivered message of a device, oldest first, then its pending `handled` notices (SPEC §10: after the
   * backlog of messages), up to a log position (inclusive), or all when `upToStreamId` is null.
   */
  async backlog(shopId: string, clientId: string, upToStreamId: string | null): Promise<Pending[]> {
    const max =
      upToStreamId === null ? `[${clientId}|\xff` : `[${clientId}|${paddedStreamId(upToStreamId)}|\xff`;
    const members = await this.redis.zrangebylex(this.keys.inboxOrder(shopId), `[${clientId}|`, max);
    if (members.length === 0) return [];
    const ids = members.map((member) => member.slice(member.lastIndexOf('|') + 1));
    const values = await this.redis.hmget(this.keys.inbox(shopId), ...ids);
    const messages: Pending[] = [];
    const notices: Pending[] = [];
    values.forEach((value, i) => {
      if (value === null) return; // acked between the two reads
      const pending = pendingOf(ids[i]!, value);
      (pending.kind === 'message' ? messages : notices).push(pending);
    });
    return [...messages, ...notices];
  }

  /**
   * A device's backlog as frames to write: every undelivered message and pending notice but those `isWritten`
   * already (on the connection at hand), messages first, each counted as a push.
   */
  async backlogFrames(
    shopId: string,
    clientId: string,
    isWritten: (id: string) => boolean,
  ): Promise<string[]> {
    const backlog = (await this.backlog(shopId, clientId, null)).filter((item) => !isWritten(item.id));
    if (backlog.length === 0) return [];
    const attempts = await this.countPushes(
      shopId,
      backlog.map((item) => ({ id: item.id, limit: FIRST_PUSH_LIMIT })),
    );
    const frames: string[] = [];
    backlog.forEach((item, i) => {
      const attempt = attempts[i] ?? 0;
      if (attempt > 0) frames.push(frameOf(item, attempt));
    });
    return frames;
  }

  /** Counts one push of each message still undelivered and under its limit; see push-2.lua for the answers. */
  async countPushes(shopId: string, items: InboxItem[]): Promise<number[]> {
    if (items.length === 0) return [];
    const args: Array<string | number> = [];
    for (const item of items) args.push(item.id, item.limit);
    const reply = await runScript(
      this.redis,
      'push-2',
      [this.keys.inbox(shopId), this.keys.attempts(shopId)],
      args,
    );
    return reply.map(Number);
  }

  /**
   * Routes and counts one push of each message still undelivered, under its limit and with its recipient connected,
   * in one round trip; see route-3.lua. Per item: the attempt (0: nothing to push; negative: the limit is reached)
   * and the recipient's presence when it is pushed.
   */
  async routePushes(
    shopId: string,
    items: ReadonlyArray<InboxItem & { clientId: string }>,
  ): Promise<Array<{ attempt: number; route: Presence | null }>> {
    if (items.length === 0) return [];
    const args: Array<string | number> = [];
    for (const item of items) args.push(item.id, item.clientId, item.limit);
    const reply = await runScript(
      this.redis,
      'route-3',
      [this.keys.inbox(shopId), this.keys.attempts(shopId), this.keys.presence(shopId)],
      args,
    );
    const routed: Array<{ attempt: number; route: Presence | null }> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const attempt = Number(reply[i]);
      routed.push({ attempt, route: attempt > 0 ? (JSON.parse(String(reply[i + 1])) as Presence) : null });
    }
    return routed;
  }

  /** The undelivered messages and pending notices of one shop, by inbox id; acked ones are absent. */
  async pending(shopId: string, ids: string[]): Promise<Map<string, Pending>> {
    const found = new Map<string, Pending>();
    if (ids.length === 0) return found;
    const values = await this.redis.hmget(this.keys.inbox(shopId), ...ids);
    values.forEach((value, i) => {
      if (value !== null) found.set(ids[i]!, pendingOf(ids[i]!, value));
    });
    return found;
  }

  /** How many undelivered messages the shop has, and the oldest one's creation time. */
  async pendingOf(shopId: string): Promise<{ count: number }> {
    return { count: await this.redis.hlen(this.keys.inbox(shopId)) };
  }
}
