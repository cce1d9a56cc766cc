// What a device client can be told, its defaults (listed once, with units), and the shapes of its events.
import { randomUUID } from 'node:crypto';
import type {
  BroadcastFrame,
  HandledFrame,
  LoginFrame,
  MessageFrame,
  NotifyFrame,
  ReplyFrame,
} from '#events';
import { DEFAULT_RECENT_IDS } from './recent-ids';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './reconnect';

/** The subset of a pino logger the client uses; pass a child logger, or nothing for silence. */
export interface ClientLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DeviceClientOptions {
  /** `ws://host:port/ws` or `wss://…`. */
  url: string;
  /** The device token (`broker token` or the registration answer). Never logged. */
  token: string;
  /** Optional login fields; when given they must match the token. */
  shopId?: string;
  clientId?: string;
  type?: LoginFrame['type'];
  /** Ack each pushed message and `handled` notice as it arrives (default true). Off: call ack() / ackHandled(). */
  autoAck?: boolean;
  /** Reconnect and log in again after an unexpected close (default true). */
  reconnect?: boolean;
  /** Reconnect waits: full jitter under min(maxMs, baseMs·2^attempt); default 500 ms … 30 s. */
  backoff?: Partial<BackoffPolicy>;
  /** A notify without a final answer after this long rejects with TIMEOUT (default 30 s; Infinity waits). */
  notifyTimeoutMs?: number;
  /** Socket open plus login reply within this long, or the attempt counts as failed (default 10 s). */
  loginTimeoutMs?: number;
  /** handle(), ping() and the logout handshake wait this long (default 10 s). */
  requestTimeoutMs?: number;
  /** Nothing heard (frames, pings, pongs) for this long → the connection is dead (default 60 s; 0 off). */
  idleTimeoutMs?: number;
  /** The edge's frame limit; larger notifies are refused locally (default 64 KiB, EDGE_MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
  /** How many acked message ids, and as many notice ids, are remembered for deduplication (default 10,000). */
  dedupIds?: number;
  /** How many received frames next() and messages() keep (default 10,000; 0 when only events are used). */
  keepFrames?: number;
  /** TLS (wss): trusted CA, and the client certificate and key for mutual TLS. */
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default true; false accepts any server certificate (development only). */
  rejectUnauthorized?: boolean;
  logger?: ClientLogger;
  /** Randomness for the backoff jitter (tests inject it); default Math.random. */
  random?: () => number;
  /** Generates req_ids; default crypto.randomUUID. */
  newReqId?: () => string;
}

export type Settings = Readonly<
  Required<Omit<DeviceClientOptions, 'shopId' | 'clientId' | 'type' | 'ca' | 'cert' | 'key' | 'backoff'>> &
    Pick<DeviceClientOptions, 'shopId' | 'clientId' | 'type' | 'ca' | 'cert' | 'key'> & {
      backoff: Readonly<BackoffPolicy>;
    }
>;

const SILENT: ClientLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Options → settings with every default filled in; an option given as undefined takes its default. */
export function settingsOf(options: DeviceClientOptions): Settings {
  if (!options.url) throw new TypeError('DeviceClient needs a url');
  if (!options.token) throw new TypeError('DeviceClient needs a token');
  const backoff = Object.freeze({
    baseMs: options.backoff?.baseMs ?? DEFAULT_BACKOFF.baseMs,
    maxMs: options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs,
  });
  if (!(backoff.baseMs > 0 && backoff.maxMs >= backoff.baseMs)) {
    throw new RangeError('backoff needs 0 < baseMs <= maxMs');
  }
  return Object.freeze({
    url: options.url,
    token: options.token,
    shopId: options.shopId,
    clientId: options.clientId,
    type: options.type,
    autoAck: options.autoAck ?? true,
    reconnect: options.reconnect ?? true,
    backoff,
    notifyTimeoutMs: options.notifyTimeoutMs ?? 30_000,
    loginTimeoutMs: options.loginTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    maxFrameBytes: options.maxFrameBytes ?? 64 * 1024,
    dedupIds: options.dedupIds ?? DEFAULT_RECENT_IDS,
    keepFrames: options.keepFrames ?? 10_000,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    logger: options.logger ?? SILENT,
    random: options.random ?? Math.random,
    newReqId: options.newReqId ?? (() => randomUUID()),
  });
}

export interface LoginInfo {
  conn_id: string;
  edge_id: string;
  /** True for every login after the first: the edge is about to redeliver what was not acked. */
  reconnected: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
  willReconnect: boolean;
}

export interface ReconnectInfo {
  /** 1 for the first try after a close, growing while connections keep failing. */
  attempt: number;
  delayMs: number;
  /** The close code that caused it. */
  code: number;
}

export type NotifyInput = Omit<NotifyFrame, 'op' | 'req_id'> & { req_id?: string };

export type DeviceClientEvents = {
  message: [MessageFrame];
  /** SPEC §10: another main (or the back office) handled the request this device's copy `id` belongs to. */
  handled: [HandledFrame];
  broadcast: [BroadcastFrame];
  reply: [ReplyFrame];
  login: [LoginInfo];
  close: [CloseInfo];
  reconnect: [ReconnectInfo];
  error: [Error];
};
