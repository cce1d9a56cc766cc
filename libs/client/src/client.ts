// A device's session with the broker across connections (SPEC §3, §10): login, re-login with backoff after an
// unexpected close, notifies and handles that survive reconnects, acks and deduplication of pushed messages and
// `handled` notices. The socket is connection.ts; the decisions (backoff, final closes, dedup, request
// outcomes) are the pure modules.
import { EventEmitter } from 'node:events';
import type { HandledFrame, MessageFrame, NotifyFrame, ReplyFrame } from '#events';
import { AckQueue } from './ack-queue';
import { Connection, type ConnectionEnd } from './connection';
import { type Deferred, deferred } from './deferred';
import { ClientError, closeCodeName } from './errors';
import { FrameInbox } from './frame-inbox';
import {
  type ClientLogger,
  type CloseInfo,
  type DeviceClientEvents,
  type DeviceClientOptions,
  type LoginInfo,
  type NotifyInput,
  type Settings,
  settingsOf,
} from './options';
import { backoffDelayMs, finalFailureOf, isFinalLoginCode, nextAttempt } from './reconnect';
import { type HandleRequest, RequestOutbox } from './request-outbox';
import type { FrameOf, HandleResult, NotifyResult, ReadFrame } from './wire';

/** After a refused login the edge closes with the code that names the cause; this is how long we wait for it. */
const CLOSE_GRACE_MS = 1_000;

/** idle: no socket and none planned; waiting: a reconnect is scheduled; closed: for good. */
type State = 'idle' | 'connecting' | 'ready' | 'waiting' | 'closed';

interface PendingPing {
  resolve(reply: ReplyFrame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  private readonly settings: Settings;
  private readonly log: ClientLogger;
  private readonly acks: AckQueue;
  private readonly inbox: FrameInbox;
  private readonly outbox: RequestOutbox;
  private state: State = 'idle';
  private connection: Connection | undefined;
  private loginInfo: LoginInfo | undefined;
  private hasLoggedIn = false;
  /** -1 until the first failure; see nextAttempt(). */
  private attempt = -1;
  private finalError: ClientError | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pings = new Map<string, PendingPing>();
  private connecting: Deferred<LoginInfo> | undefined;
  private shutdown: Promise<void> | undefined;
  private readonly closed = deferred<void>();

  constructor(options: DeviceClientOptions) {
    super();
    this.settings = settingsOf(options);
    this.log = this.settings.logger;
    this.acks = new AckQueue({
      capacity: this.settings.dedupIds,
      autoAck: this.settings.autoAck,
      flush: () => this.flushAcks(),
    });
    this.inbox = new FrameInbox(this.settings.keepFrames);
    this.outbox = new RequestOutbox({
      send: (text) => this.connection?.send(text) ?? false,
      backoff: this.settings.backoff,
      random: this.settings.random,
      maxFrameBytes: this.settings.maxFrameBytes,
    });
  }

  /** The current connection's ids, while logged in. */
  get session(): LoginInfo | undefined {
    return this.loginInfo;
  }

  get isReady(): boolean {
    return this.state === 'ready';
  }

  /** Notifies sent or queued and not yet answered. */
  get pendingNotifies(): number {
    return this.outbox.count('notify');
  }

  /** Handles sent or queued and not yet answered. */
  get pendingHandles(): number {
    return this.outbox.count('handle');
  }

  /**
   * Opens the socket and logs in; resolves with the login reply's data. Rejects at once on a final refusal
   * (bad token, revoked, replaced, invalid login fields). A passing failure (network, 503, drain) is retried
   * with backoff when `reconnect` is on, and rejects with CONNECTION_LOST or LOGIN_REFUSED when it is off.
   */
  connect(): Promise<LoginInfo> {
    if (this.finalError) return Promise.reject(this.finalError);
    if (this.shutdown) return Promise.reject(new ClientError('CLIENT_CLOSED'));
    if (this.state === 'ready' && this.loginInfo) return Promise.resolve(this.loginInfo);
    if (!this.connecting) {
      this.connecting = deferred<LoginInfo>();
      if (this.state === 'idle') this.open();
    }
    return this.connecting.promise;
  }

  /**
   * Records a table event; resolves once the edge says it is durable. Unanswered notifies are sent again,
   * with the same req_id, after every reconnect; a 503 (event log unavailable) is retried with backoff.
   * Rejects with REFUSED (`.code`, `.msg`) on any other error reply, TIMEOUT after `notifyTimeoutMs`.
   */
  notify(input: NotifyInput, options: { timeoutMs?: number } = {}): Promise<NotifyResult> {
    if (this.finalError) return Promise.reject(this.finalError);
    if (this.shutdown) return Promise.reject(new ClientError('CLIENT_CLOSED'));
    const frame: NotifyFrame = {
      op: 'notify',
      req_id: input.req_id ?? this.settings.newReqId(),
      table_id: input.table_id,
      type: input.type,
    };
    if (input.status !== undefined) frame.status = input.status;
    if (input.data !== undefined) frame.data = input.data;
    if (input.user_info !== undefined) frame.user_info = input.user_info;
    return this.outbox.submit(frame, options.timeoutMs ?? this.settings.notifyTimeoutMs);
  }

  /**
   * SPEC §10: handles the request message `id` (one of this main device's own) belongs to, for every main of
   * the shop. Resolves `{ ok: true, id, event_id }` once durable, or `{ ok: false, handled_by, handled_at,
   * status }` when someone else handled it first (reply 409). Unanswered handles are sent again, with the same
   * req_id, after every reconnect. Rejects with REFUSED (`.code`, `.msg`) on any other error reply (403, 404,
   * 503, …), TIMEOUT after `timeoutMs` (default `requestTimeoutMs`); handling again is safe either way.
   */
  handle(
    id: string,
    status: number,
    options: { req_id?: string; timeoutMs?: number } = {},
  ): Promise<HandleResult> {
    if (this.finalError) return Promise.reject(this.finalError);
    if (this.shutdown) return Promise.reject(new ClientError('CLIENT_CLOSED'));
    const frame: HandleRequest = {
      op: 'handle',
      id,
      status,
      req_id: options.req_id ?? this.settings.newReqId(),
    };
    return this.outbox.submit(frame, options.timeoutMs ?? this.settings.requestTimeoutMs);
  }

  /** Acknowledges messages (needed only with autoAck off). Sent now, or right after the next login. */
  ack(ids: string | readonly string[]): void {
    this.acks.ack('message', ids);
  }

  /**
   * Acknowledges `handled` notices by their `id` (needed only with autoAck off). Sent now, or right after the
   * next login; until then the edge sends each again on every new connection.
   */
  ackHandled(ids: string | readonly string[]): void {
    this.acks.ack('handled', ids);
  }

  /** A round trip to the edge; resolves with the pong. */
  ping(timeoutMs: number = this.settings.requestTimeoutMs): Promise<ReplyFrame> {
    const reqId = this.settings.newReqId();
    if (!this.connection?.send(JSON.stringify({ op: 'ping', req_id: reqId }))) {
      return Promise.reject(new ClientError('NOT_CONNECTED'));
    }
    return new Promise<ReplyFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(reqId);
        reject(new ClientError('TIMEOUT', { reqId }, `no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(reqId, { resolve, reject, timer });
    });
  }

  /** The next received frame with this op, already buffered or still to come: `next('message')`. */
  next<Op extends string>(
    op: Op,
    predicate?: (frame: FrameOf<Op>) => boolean,
    timeoutMs: number = 5_000,
  ): Promise<FrameOf<Op>> {
    return this.inbox.next(op, predicate, timeoutMs);
  }

  /** Every message handed to the app so far (each id once), oldest first. */
  messages(): MessageFrame[] {
    return this.inbox.messages();
  }

  /** Tells the edge this device is leaving (ConnectionClosed, reason logout) and closes. No reconnect. */
  logout(): Promise<void> {
    this.shutdown ??= this.shutDown('logout');
    return this.shutdown;
  }

  /** Closes the socket with 1000. Idempotent; no reconnect after it. Unanswered notifies and handles reject. */
  close(): Promise<void> {
    this.shutdown ??= this.shutDown('close');
    return this.shutdown;
  }

  private async shutDown(mode: 'logout' | 'close'): Promise<void> {
    clearTimeout(this.reconnectTimer);
    this.flushAcks();
    const err = new ClientError('CLIENT_CLOSED');
    this.connecting?.reject(err);
    this.connecting = undefined;
    this.outbox.rejectAll(err);
    this.inbox.fail(err);
    this.failPings(err);
    const connection = this.connection;
    if (!connection) {
      this.state = 'closed';
      this.closed.resolve();
    } else if (mode === 'logout' && connection.send(JSON.stringify({ op: 'logout' }))) {
      // The edge closes with 1000 once the logout is recorded; close ourselves if it does not.
      const timer = setTimeout(() => connection.close(1000, 'logout'), this.settings.requestTimeoutMs);
      await this.closed.promise;
      clearTimeout(timer);
    } else {
      connection.close(1000, 'client closed');
    }
    await this.closed.promise;
  }

  private open(): void {
    this.state = 'connecting';
    const connection: Connection = new Connection(this.settings, {
      // A replaced connection may still report its last frames or its close; only the current one counts.
      frame: (read) => {
        if (this.connection === connection) this.receive(connection, read);
      },
      unreadable: () => this.log.warn({ conn_id: this.loginInfo?.conn_id }, 'unreadable frame ignored'),
      socketError: (err) => {
        if (this.connection === connection) this.socketFailed(err);
      },
      closed: (end) => {
        if (this.connection === connection) this.connectionClosed(end);
      },
    });
    this.connection = connection;
  }

  private receive(connection: Connection, read: ReadFrame): void {
    switch (read.kind) {
      case 'message':
        this.receiveMessage(read.frame);
        return;
      case 'handled':
        this.receiveNotice(read.frame);
        return;
      case 'broadcast':
        this.inbox.push(read.frame);
        this.emit('broadcast', read.frame);
        return;
      case 'reply':
        this.receiveReply(connection, read.frame);
        return;
      default: {
        const unreachable: never = read;
        throw new Error(`unknown frame kind ${JSON.stringify(unreachable)}`);
      }
    }
  }

  // SPEC §3: the device acks each message and ignores repeats of an id it has already handled. A repeat
  // means our ack was lost, so it is acked again; the app sees each id once.
  private receiveMessage(frame: MessageFrame): void {
    if (this.acks.received('message', frame.id)) {
      this.log.debug({ id: frame.id, attempt: frame.attempt }, 'repeated message acked again');
      return;
    }
    this.inbox.pushMessage(frame);
    this.emit('message', frame);
  }

  // SPEC §10: a `handled` notice is acked and deduplicated like a message, by the id of the device's copy.
  private receiveNotice(frame: HandledFrame): void {
    if (this.acks.received('handled', frame.id)) {
      this.log.debug({ id: frame.id, event_id: frame.event_id }, 'repeated handled notice acked again');
      return;
    }
    this.inbox.push(frame);
    this.emit('handled', frame);
  }

  private receiveReply(connection: Connection, reply: ReplyFrame): void {
    this.inbox.push(reply);
    this.emit('reply', reply);
    if (reply.op === 'login' && this.state === 'connecting') {
      this.loginAnswered(connection, reply);
    } else if (reply.op === 'pong') {
      this.pongReceived(reply);
    } else if (!this.outbox.settle(reply) && reply.code !== 0) {
      this.log.warn(
        { op: reply.op, code: reply.code, msg: reply.msg, req_id: reply.req_id },
        'request refused',
      );
    }
  }

  private loginAnswered(connection: Connection, reply: ReplyFrame): void {
    if (reply.code !== 0) {
      const error = new ClientError('LOGIN_REFUSED', { code: reply.code, msg: reply.msg });
      if (isFinalLoginCode(reply.code)) connection.endAfter(error, CLOSE_GRACE_MS);
      else connection.abort(error);
      return;
    }
    connection.loggedIn();
    const session: LoginInfo = {
      conn_id: String(reply.data?.conn_id ?? ''),
      edge_id: String(reply.data?.edge_id ?? ''),
      reconnected: this.hasLoggedIn,
    };
    this.loginInfo = session;
    this.state = 'ready';
    this.hasLoggedIn = true;
    this.log.info({ conn_id: session.conn_id, edge_id: session.edge_id }, 'logged in');
    this.outbox.sendUnanswered();
    this.flushAcks();
    this.connecting?.resolve(session);
    this.connecting = undefined;
    this.emit('login', session);
  }

  private pongReceived(reply: ReplyFrame): void {
    // A pong names its ping by req_id; one without it answers the oldest ping.
    const key =
      reply.req_id !== undefined && this.pings.has(reply.req_id)
        ? reply.req_id
        : this.pings.keys().next().value;
    const ping = key === undefined ? undefined : this.pings.get(key);
    if (key === undefined || !ping) return;
    this.pings.delete(key);
    clearTimeout(ping.timer);
    ping.resolve(reply);
  }

  private socketFailed(err: Error): void {
    this.log.warn({ url: this.settings.url, reason: err.message }, 'socket error');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private connectionClosed({ code, reason, loggedInForMs, failure }: ConnectionEnd): void {
    this.connection = undefined;
    this.loginInfo = undefined;
    this.outbox.connectionLost();
    this.failPings(new ClientError('CONNECTION_LOST', { closeCode: code, msg: reason }));
    this.log.info({ code, close: closeCodeName(code), reason }, 'connection closed');

    if (!this.shutdown && !this.finalError) {
      const final = finalFailureOf(code, reason, failure);
      if (final) this.failForGood(final);
    }
    if (this.shutdown || this.finalError) {
      this.settle({ code, reason, willReconnect: false });
      return;
    }
    if (code === 1009) {
      this.outbox.refuseLargestSent(
        (reqId) =>
          new ClientError('FRAME_TOO_LARGE', { closeCode: code, reqId }, 'the edge closed with 1009'),
      );
    }
    if (!this.settings.reconnect) {
      this.state = 'idle';
      this.connecting?.reject(failure);
      this.connecting = undefined;
      this.emit('close', { code, reason, willReconnect: false });
      return;
    }
    this.state = 'waiting';
    this.emit('close', { code, reason, willReconnect: true });
    if (this.shutdown) return; // a 'close' listener closed the client
    this.attempt = nextAttempt(this.attempt, loggedInForMs);
    const delayMs = backoffDelayMs(this.attempt, this.settings.backoff, this.settings.random);
    this.log.info({ attempt: this.attempt + 1, delay_ms: delayMs, reason: failure.message }, 'reconnecting');
    this.emit('reconnect', { attempt: this.attempt + 1, delayMs, code });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open();
    }, delayMs);
  }

  /** The socket is gone and nothing follows it. */
  private settle(info: CloseInfo): void {
    this.state = 'closed';
    this.closed.resolve();
    this.emit('close', info);
  }

  /** A condition reconnecting cannot fix: every waiting caller learns why, and the client stays closed. */
  private failForGood(error: ClientError): void {
    this.finalError = error;
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    this.connecting?.reject(error);
    this.connecting = undefined;
    this.outbox.rejectAll(error);
    this.inbox.fail(error);
    this.failPings(error);
    this.log.warn({ code: error.code, close_code: error.closeCode, msg: error.msg }, 'closed for good');
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  private failPings(err: Error): void {
    for (const ping of this.pings.values()) {
      clearTimeout(ping.timer);
      ping.reject(err);
    }
    this.pings.clear();
  }

  /** Sends queued acks on a logged-in connection; otherwise they wait for the next login. */
  private flushAcks(): void {
    const connection = this.connection;
    if (this.state !== 'ready' || !connection) return;
    for (const frame of this.acks.takeFrames()) connection.send(JSON.stringify(frame));
  }
}
