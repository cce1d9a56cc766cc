// Writing to the event log. Every write is one atomic Redis step (XADD or a script), and a write is reported
// done only once Redis has answered it. A Redis outage surfaces as LOG_UNAVAILABLE.
import {
  BrokerError,
  type BrokerEvent,
  broadcastFrameOf,
  type DeliveryVia,
  type DeviceType,
  type EventOf,
  encodeEvent,
  type Keys,
  type MessagePayload,
  messageFrameOf,
  reqRecordOf,
  titleOf,
} from '#events';
import { counter, type RedisClient } from '#runtime';
import { asLogError } from './failures';
import { backlogFramesOf } from './inbox';
import type { NotifyArchive } from './req-archive';
import { defineScripts, runScript } from './scripts';

/** SPEC §3: the same req_id from the same device within 24 h is a duplicate. */
export const REQ_ID_TTL_S = 24 * 60 * 60;

/** How long a recorded close is remembered, so that a retried or swept close of it appends nothing (ms). */
export const CLOSE_MEMORY_MS = 60 * 60 * 1000;

/** The credential of a login over the original protocol (SPEC §9.1), which carries no token. */
export const LEGACY_LOGIN: unique symbol = Symbol('legacy login');

export type NotifyOutcome = { eventId: string; isDuplicate: boolean; streamId?: string };

const pushesAtAppend = counter(
  'broker_pushes_at_append_total',
  "First pushes of a sub's notify made by its append (notify-12.lua), by whether an edge received them",
  ['outcome'],
);

/** A device's presence entry, also the connection shape of the REST API. */
export interface Presence {
  conn_id: string;
  edge_id: string;
  shop_id: string;
  client_id: string;
  type: DeviceType;
  connected_at: string;
  remote_addr: string;
  /** Logged in over the original system's protocol (SPEC §9.1); absent for v1. */
  legacy?: true;
}

export interface EventLogOptions {
  /**
   * Where a req_id the exact records no longer hold is looked up (notify-12.lua). Without one, records are kept
   * their whole 24 h (`reqWindowS` is ignored) and are then the whole truth: a req_id they do not hold is new.
   */
  archive?: NotifyArchive;
  /** How long exact req_id records stay in Redis once their event is archived (s): the streams' retention tail. */
  reqWindowS?: number;
}

export class EventLog {
  private readonly archive: NotifyArchive | undefined;
  private readonly reqWindowS: number;

  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
    options: EventLogOptions = {},
  ) {
    defineScripts(redis);
    this.archive = options.archive;
    this.reqWindowS = options.archive
      ? Math.min(REQ_ID_TTL_S, options.reqWindowS ?? REQ_ID_TTL_S)
      : REQ_ID_TTL_S;
  }

  /** Appends one event as is; resolves with its stream id once Redis has it. */
  async append(event: BrokerEvent): Promise<string> {
    try {
      const id = await this.redis.xadd(this.keys.streamOfShop(event.shop_id), '*', ...encodeEvent(event));
      return id as string;
    } catch (err) {
      throw asLogError(err);
    }
  }

  /**
   * Appends a NotifyRequested (its recipients are filled in by Redis from the registry, atomically) and files
   * one message per recipient in the inbox; a sub's notify is pushed to its recipients' connections in the same
   * step (notify-12.lua), the dispatcher retrying what reached no edge, and a main's or the back office's is
   * broadcast to the connected subs. A repeated (sender, req_id) answers the first
   * event id; with
   * `remember: false` (a REST notify that carried no req_id) nothing is recorded to match a repeat. With `connId`,
   * a sender connection that a newer login of the device replaced is refused (REPLACED).
   */
  async appendNotify(
    event: EventOf<'NotifyRequested'>,
    sender: { tokenId: string; type: DeviceType | ''; connId?: string; remember?: boolean },
  ): Promise<NotifyOutcome> {
    const shop = event.shop_id;
    const senderId = event.data.from_client_id ?? '';
    // A req_id record holds the event id in 26 bytes (a ULID): anything else would corrupt its bucket.
    if (event.id.length !== 26) throw new BrokerError('INVALID_INPUT', 'event id is not a ULID');
    const record = reqRecordOf(senderId || 'api', event.data.req_id);
    const remember = sender.remember ?? true;
    // The script fills in the recipients: cut the JSON where they go. They are put last (data is the envelope's
    // last field, recipients data's last), so the cut is at a fixed place, whatever the client's strings hold.
    const { data: _data, ...envelope } = event;
    const { recipients: _recipients, ...fields } = event.data;
    const json = JSON.stringify({ ...envelope, data: fields });
    const head = `${json.slice(0, -2)},"recipients":`;
    const tail = json.slice(-2);
    const payload: Omit<MessagePayload, 'id' | 'to_client_id'> = {
      shop_id: shop,
      table_id: event.data.table_id,
      type: event.data.type,
      status: event.data.status,
      title: titleOf(event.data.table_id, event.data.type),
      data: event.data.data,
      user_info: event.data.user_info,
      from_client_id: event.data.from_client_id,
      created_at: event.at,
    };
    // The first push's frame, cut where the recipient's client id goes (notify-12.lua routes the pushes).
    const frameHead = `{"op":"message","id":"${event.id}.`;
    const frame = JSON.stringify(messageFrameOf({ ...payload, id: `${event.id}.`, to_client_id: '' }, 1));
    if (!frame.startsWith(frameHead)) throw new Error('message frame does not start with its id');
    const shard = this.keys.shardOf(shop);
    const run = async (archiveChecked: boolean) => {
      try {
        return await runScript(
          this.redis,
          'notify-12',
          [
            this.keys.stream(shard),
            this.keys.dedupOf(shop, record.digest),
            this.keys.devices(shop),
            this.keys.inbox(shop),
            this.keys.inboxOrder(shop),
            this.keys.presence(shop),
            this.keys.requests(shop),
            this.keys.attempts(shop),
            this.keys.archivedThrough(shard),
            this.keys.reqFilter(shard, 0),
            this.keys.reqFilter(shard, 1),
            this.keys.earlierRequests(shop),
          ],
          [
            senderId,
            sender.tokenId,
            sender.type,
            event.id,
            head,
            tail,
            JSON.stringify(payload),
            REQ_ID_TTL_S,
            sender.connId ?? '',
            remember ? record.bucket : '',
            record.tag,
            this.keys.edgeChannel(shard, ''),
            frameHead,
            frame.slice(frameHead.length),
            sender.type === 'sub' ? '' : JSON.stringify(broadcastFrameOf(event)),
            this.reqWindowS,
            record.probe,
            archiveChecked ? 'checked' : '',
            record.earlierBucket,
          ],
        );
      } catch (err) {
        throw asLogError(err);
      }
    };
    let reply = await run(false);
    if (reply[0] === 2) {
      // Not in the exact records, maybe in the shard's filters: a resend after the window, or a false positive.
      const earlier = this.archive ? await this.archive(shop, senderId, event.data.req_id) : null;
      if (earlier !== null) return { eventId: earlier, isDuplicate: true };
      reply = await run(true); // asks the exact records again: a resend appended meanwhile is found there
    }
    switch (reply[0]) {
      case 0:
        pushesAtAppend.inc({ outcome: 'reached' }, Number(reply[4] ?? 0));
        pushesAtAppend.inc({ outcome: 'unreached' }, Number(reply[5] ?? 0));
        return { eventId: String(reply[1]), isDuplicate: false, streamId: String(reply[2]) };
      case 1:
        return { eventId: String(reply[1]), isDuplicate: true };
      case -1:
        throw new BrokerError('NO_MAIN_DEVICE');
      case -3:
        throw new BrokerError('TOKEN_INVALID', 'token belongs to an older registration of this device');
      case -5:
        throw new BrokerError('REPLACED');
      default:
        throw new BrokerError('DEVICE_REVOKED', 'sender is not a registered device of the shop');
    }
  }

  /**
   * Logs a device in; answers the connection it replaces, if any, and the device's backlog as frames to write
   * (messages, then `handled` notices; each push counted), read in the same step. `credential` is the token id the device's token
   * carries, or LEGACY_LOGIN for a device of the original protocol (no token: it must be registered as legacy).
   */
  async login(
    event: EventOf<'DeviceLoggedIn'>,
    credential: string | typeof LEGACY_LOGIN,
    presence: Presence,
  ): Promise<{ replaced: Presence | null; backlog: string[] }> {
    const isLegacy = credential === LEGACY_LOGIN;
    const shop = event.shop_id;
    let reply: Array<string | number>;
    try {
      reply = await runScript(
        this.redis,
        'login-6',
        [
          this.keys.streamOfShop(shop),
          this.keys.devices(shop),
          this.keys.presence(shop),
          this.keys.inbox(shop),
          this.keys.inboxOrder(shop),
          this.keys.attempts(shop),
        ],
        [
          event.data.client_id,
          isLegacy ? '' : credential,
          event.data.type,
          JSON.stringify(presence),
          JSON.stringify(event),
          isLegacy ? 'legacy' : '',
        ],
      );
    } catch (err) {
      throw asLogError(err);
    }
    switch (reply[0]) {
      case 0: {
        const entries: Array<{ id: string; attempt: number; value: string }> = [];
        for (let i = 3; i + 2 < reply.length; i += 3)
          entries.push({ id: String(reply[i]), attempt: Number(reply[i + 1]), value: String(reply[i + 2]) });
        return {
          replaced: reply[2] ? (JSON.parse(String(reply[2])) as Presence) : null,
          backlog: backlogFramesOf(entries),
        };
      }
      case -3:
        throw new BrokerError('TOKEN_INVALID', 'token belongs to an older registration of this device');
      case -4:
        throw new BrokerError(
          'TOKEN_INVALID',
          `${isLegacy ? 'type' : 'token type'} does not match the registered device`,
        );
      case -6:
        throw new BrokerError('REPLACED', 'a newer connection of this device has logged in');
      case -7:
        throw new BrokerError('TOKEN_INVALID', 'device is not registered for the original protocol (legacy)');
      default:
        throw new BrokerError('DEVICE_REVOKED', 'device is not registered (or was revoked)');
    }
  }

  /**
   * Acks messages of one device; appends MessageDelivered for those still undelivered. Answers how many. `via` says
   * how the delivery is known: the device's ack, or (a device of the original protocol, which cannot ack) the edge's
   * write to its socket.
   */
  async ack(
    shopId: string,
    clientId: string,
    source: string,
    ids: string[],
    eventId: string,
    nowMs: number,
    via: DeliveryVia = 'ack',
  ) {
    const head = JSON.stringify({
      id: eventId,
      type: 'MessageDelivered',
      v: 1,
      at: new Date(nowMs).toISOString(),
      shop_id: shopId,
      source,
      data: { client_id: clientId, via, ids: [] },
    });
    // Cut the JSON just before the ids array's value, so the script can append what it actually removed.
    const cut = head.lastIndexOf('[]');
    let reply: Array<string | number>;
    try {
      reply = await runScript(
        this.redis,
        'ack-4',
        [
          this.keys.streamOfShop(shopId),
          this.keys.inbox(shopId),
          this.keys.inboxOrder(shopId),
          this.keys.attempts(shopId),
        ],
        [clientId, head.slice(0, cut), ...ids],
      );
    } catch (err) {
      throw asLogError(err);
    }
    return reply[0] === 0 ? Number(reply[2]) : 0;
  }

  /** Registers a device; CONFLICT when the client id is active. */
  async register(event: EventOf<'DeviceRegistered'>): Promise<void> {
    const shop = event.shop_id;
    const entry = JSON.stringify({
      type: event.data.type,
      token_id: event.data.token_id,
      registered_at: event.at,
      ...(event.data.legacy === true ? { legacy: true } : {}),
    });
    let reply: Array<string | number>;
    try {
      reply = await runScript(
        this.redis,
        'register-2',
        [this.keys.streamOfShop(shop), this.keys.devices(shop)],
        [event.data.client_id, entry, JSON.stringify(event)],
      );
      await this.redis.sadd(this.keys.shops(), shop);
    } catch (err) {
      throw asLogError(err);
    }
    if (reply[0] === -1)
      throw new BrokerError('CONFLICT', `device ${event.data.client_id} is already registered`);
  }

  /** Revokes a device; answers its live connection, if any. NOT_FOUND when no such active device. */
  async revoke(event: EventOf<'DeviceRevoked'>): Promise<Presence | null> {
    const shop = event.shop_id;
    let reply: Array<string | number>;
    try {
      reply = await runScript(
        this.redis,
        'revoke-3',
        [this.keys.streamOfShop(shop), this.keys.devices(shop), this.keys.presence(shop)],
        [event.data.client_id, JSON.stringify(event)],
      );
    } catch (err) {
      throw asLogError(err);
    }
    if (reply[0] === -1) throw new BrokerError('NOT_FOUND', `no active device ${event.data.client_id}`);
    return reply[2] ? (JSON.parse(String(reply[2])) as Presence) : null;
  }

  /**
   * Appends ConnectionClosed once per connection (a retry after a lost reply, or the dead-edge sweep after the edge,
   * appends nothing again), and drops the presence if it is still this connection's. Answers whether it appended.
   */
  async recordClose(event: EventOf<'ConnectionClosed'>): Promise<boolean> {
    const shop = event.shop_id;
    try {
      const reply = await runScript(
        this.redis,
        'close-3',
        [this.keys.streamOfShop(shop), this.keys.presence(shop), this.keys.closedConnections(shop)],
        [event.data.client_id, event.data.conn_id, JSON.stringify(event), Date.now(), CLOSE_MEMORY_MS],
      );
      return reply[0] === 0;
    } catch (err) {
      throw asLogError(err);
    }
  }
}
