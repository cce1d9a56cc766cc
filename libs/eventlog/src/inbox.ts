// The inbox: the undelivered messages of each device, kept in Redis in log order until the device acks them
// (written by the notify script, emptied by the ack script). The dispatcher reads it for backlogs and counts
// pushes in it.
import { type Keys, type MessagePayload, messageFrameOf, paddedStreamId } from '#events';
import type { RedisClient } from '#runtime';
import type { Presence } from './append';
import { defineScripts, runScript } from './scripts';

/** What the notify script stores per message: the payload without its id and recipient (both in the key). */
type StoredPayload = Omit<MessagePayload, 'id' | 'to_client_id'>;

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
   * Every undelivered message of a device, oldest first, up to a log position (inclusive), or all when
   * `upToStreamId` is null.
   */
  async backlog(shopId: string, clientId: string, upToStreamId: string | null): Promise<MessagePayload[]> {
    const max =
      upToStreamId === null ? `[${clientId}|\xff` : `[${clientId}|${paddedStreamId(upToStreamId)}|\xff`;
    const members = await this.redis.zrangebylex(this.keys.inboxOrder(shopId), `[${clientId}|`, max);
    if (members.length === 0) return [];
    const ids = members.map((member) => member.slice(member.lastIndexOf('|') + 1));
    const values = await this.redis.hmget(this.keys.inbox(shopId), ...ids);
    const backlog: MessagePayload[] = [];
    values.forEach((value, i) => {
      if (value === null) return; // acked between the two reads
      backlog.push({
        ...(JSON.parse(value.slice(25)) as StoredPayload),
        id: ids[i]!,
        to_client_id: clientId,
      });
    });
    return backlog;
  }

  /**
   * A device's backlog as frames to write: every undelivered message but those `isWritten` already (on the
   * connection at hand), oldest first, each counted as a push.
   */
  async backlogFrames(
    shopId: string,
    clientId: string,
    isWritten: (id: string) => boolean,
  ): Promise<string[]> {
    const backlog = (await this.backlog(shopId, clientId, null)).filter((payload) => !isWritten(payload.id));
    if (backlog.length === 0) return [];
    const attempts = await this.countPushes(
      shopId,
      backlog.map((payload) => ({ id: payload.id, limit: FIRST_PUSH_LIMIT })),
    );
    const frames: string[] = [];
    backlog.forEach((payload, i) => {
      const attempt = attempts[i] ?? 0;
      if (attempt > 0) frames.push(JSON.stringify(messageFrameOf(payload, attempt)));
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

  /** The payloads of undelivered messages of one shop, by id; acked ones are absent. */
  async payloads(shopId: string, ids: string[]): Promise<Map<string, MessagePayload>> {
    const found = new Map<string, MessagePayload>();
    if (ids.length === 0) return found;
    const values = await this.redis.hmget(this.keys.inbox(shopId), ...ids);
    values.forEach((value, i) => {
      if (value === null) return;
      const id = ids[i]!;
      found.set(id, {
        ...(JSON.parse(value.slice(25)) as StoredPayload),
        id,
        to_client_id: id.slice(id.indexOf('.') + 1),
      });
    });
    return found;
  }

  /** How many undelivered messages the shop has, and the oldest one's creation time. */
  async pendingOf(shopId: string): Promise<{ count: number }> {
    return { count: await this.redis.hlen(this.keys.inbox(shopId)) };
  }
}
