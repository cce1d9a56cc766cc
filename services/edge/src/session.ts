// One device socket: the login gate and timeout, the rate limit, frame dispatch, and the send-buffer bound.
// Business decisions are in the Lua scripts behind EventLog; a session only validates, appends and answers.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { LEGACY_LOGIN, type Presence } from '#eventlog';
import {
  ackedIds,
  ackedNotices,
  BrokerError,
  type ClientFrame,
  createEvent,
  type DeviceType,
  type HandledBy,
  type HandleFrame,
  isBrokerError,
  isNoticeId,
  type LoginFrame,
  messageIdOfFrame,
  NOTICE_SUFFIX,
  type NotifyFrame,
  newConnId,
  newEventId,
  normaliseDeviceType,
  noticeIdOf,
  type ParsedFrame,
  parseClientFrame,
  parseMessageId,
} from '#events';
import { delay, type Logger } from '#runtime';
import type { EdgeContext } from './context';
import {
  closeCodeOfWsError,
  closeReasonOf,
  closeReasonText,
  RateLimiter,
  replyError,
  replyOk,
} from './protocol';

export interface Identity {
  shopId: string;
  clientId: string;
  type: DeviceType;
  /** '' for a device of the original protocol, which logs in without a token (SPEC §9.1). */
  tokenId: string;
  /** Logged in over the original protocol (legacy-session.ts). */
  isLegacy?: true;
}

/** How long a closing peer has to answer the close handshake before its socket is cut. */
const CLOSE_HANDSHAKE_MS = 2000;
/** Waits between tries of a login backlog that could not be read (Redis away), doubling up to the last. */
const BACKLOG_RETRY_MS = [100, 200, 500, 1000, 2000];

export class Session {
  readonly connId: string;
  readonly remoteAddr: string;
  readonly connectedAt: string;
  identity: Identity | null = null;
  missedPongs = 0;
  protected readonly limiter: RateLimiter;
  private loginTimer: NodeJS.Timeout | undefined;
  protected isClosing = false;
  protected isLoggingIn = false;
  private hasClosed = false;
  /** What ConnectionClosed records: the code and reason this edge closed with, or none if the peer left. */
  private closeCode: number | undefined;
  private closeReason: string | undefined;
  /** ConnectionClosed was already recorded (logout) or by someone else (a dead-edge sweep). */
  private isCloseRecorded = false;
  private inFlight = 0;
  private whenIdle: (() => void) | undefined;
  /**
   * SPEC §3, at most once per connection: the message ids written on this connection and not acked yet, with when
   * each was written (insertion order is write order, so the first entry is the oldest: the ack-timeout check).
   * Made at the first write and dropped when empty: an idle connection does not pay for an empty Map.
   */
  protected unacked: Map<string, number> | undefined;
  /**
   * Deliveries that arrived while the backlog was being read: written after it, so first deliveries keep log
   * order (SPEC §5.5). Null when no backlog is under way.
   */
  private held: string[][] | null = null;
  private isPushingBacklog = false;
  /** A backlog run was asked for while one was under way: it runs once more. */
  private isBacklogAgain = false;
  /** The socket holds this tick's frames, to write them in one call when the tick ends (corkForTick). */
  private isCorked = false;

  constructor(
    protected readonly ctx: EdgeContext,
    readonly socket: WebSocket,
    request: IncomingMessage,
  ) {
    const now = ctx.now();
    this.connId = newConnId(now);
    this.connectedAt = new Date(now).toISOString();
    this.remoteAddr = request.socket.remoteAddress ?? '';
    this.limiter = new RateLimiter(ctx.config.ratePerS, ctx.config.rateBurst, now);
    this.loginTimer = setTimeout(
      () => this.close(4408, 'no login within the login timeout'),
      ctx.config.loginTimeoutMs,
    );
    socket.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    socket.on('pong', () => {
      this.missedPongs = 0;
    });
    socket.on('close', (code) => this.onClosed(code));
    socket.on('error', (err) => this.onSocketError(err));
  }

  /** Sends a frame unless the peer has stopped reading: past the buffer bound the socket is closed (1013). */
  send(text: string): boolean {
    if (this.isClosing) return false;
    if (this.socket.bufferedAmount > this.ctx.config.maxBufferedBytes) {
      this.close(1013, 'send buffer over its bound');
      return false;
    }
    this.corkForTick();
    this.socket.send(text);
    return true;
  }

  /**
   * ws writes each frame by itself, one syscall per frame. The frames sent to one socket in one tick (a burst of
   * pushes read from Redis at once, a backlog, replies to pipelined requests) are held until the tick ends and then
   * written in one call: Node nests ws's own cork/uncork per frame inside this one.
   */
  private corkForTick(): void {
    if (this.isCorked) return;
    // ws keeps its net.Socket private; without it frames are written one by one, as before.
    const raw = (this.socket as unknown as { _socket?: Duplex })._socket;
    if (raw === undefined) return;
    this.isCorked = true;
    raw.cork();
    process.nextTick(() => {
      this.isCorked = false;
      raw.uncork();
    });
  }

  /** Closes with `code`; ConnectionClosed records `recordAs`, or the reason the code stands for. */
  close(code: number, reason: string, recordAs?: string): void {
    if (this.isClosing) return;
    this.isClosing = true;
    this.closeCode = code;
    this.closeReason = recordAs ?? closeReasonOf(code);
    this.stopLoginTimer();
    this.socket.close(code, closeReasonText(reason));
    // A peer that does not answer the close handshake (or has a full buffer) is cut off.
    setTimeout(() => this.socket.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }

  /** A peer that stopped answering pings: cut at once, a close handshake would wait on it for nothing. */
  terminate(recordAs: string): void {
    this.isClosing = true;
    this.closeReason ??= recordAs;
    this.stopLoginTimer();
    this.socket.terminate();
  }

  /** Draining: the frames already received are answered first, then the socket is closed with 1001. */
  async closeForDrain(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.whenIdle = resolve));
    this.close(1001, 'server draining, reconnect elsewhere');
  }

  /**
   * This connection was already recorded closed by a dead-edge sweep (Redis was away long enough for this edge
   * to count as dead). The device must log in again to be reachable, so it is asked to reconnect.
   */
  closeAsSwept(): void {
    this.isCloseRecorded = true;
    this.close(1012, 'connection state lost, reconnect');
  }

  /**
   * Writes pushed frames, in order, each message at most once on this connection (SPEC §3). Returns the frames
   * that could not be written (the socket is closing): the caller hands them back for a retry.
   */
  deliver(frames: readonly string[]): string[] {
    if (this.held !== null) {
      this.held.push([...frames]);
      return [];
    }
    return this.write(frames);
  }

  /**
   * Pushes the device's backlog: every message still undelivered and not written on this connection, oldest
   * first, then the deliveries that arrived meanwhile. Run after the login, and again after the edge's
   * subscription was interrupted (what was published meanwhile is lost, SPEC §3). Keeps trying while Redis is
   * away, as long as the socket is open. Returns the frames that could not be written. `read`: the backlog as the
   * login read it (its pushes counted), written instead of a first read.
   */
  async pushBacklog(read?: string[]): Promise<string[]> {
    const identity = this.identity;
    if (identity === null) return [];
    if (this.isPushingBacklog) {
      this.isBacklogAgain = true; // the running read may have started before what this call is for
      return [];
    }
    this.isPushingBacklog = true;
    this.held ??= [];
    const unwritten: string[] = [];
    try {
      let frames = read;
      do {
        this.isBacklogAgain = false;
        unwritten.push(...this.writeBacklog(frames ?? (await this.readBacklog(identity))));
        frames = undefined;
      } while (this.isBacklogAgain && !this.isClosing);
    } finally {
      this.isPushingBacklog = false;
      const held = this.held;
      this.held = null;
      for (const frames of held) unwritten.push(...this.write(frames));
    }
    return unwritten;
  }

  private writeBacklog(frames: readonly string[]): string[] {
    const unwritten = this.write(frames);
    this.ctx.metrics.backlog.inc(frames.length - unwritten.length);
    return unwritten;
  }

  private async readBacklog(identity: Identity): Promise<string[]> {
    for (let attempt = 0; !this.isClosing; attempt++) {
      try {
        return await this.ctx.inbox.backlogFrames(identity.shopId, identity.clientId, (id) =>
          this.isUnacked(id),
        );
      } catch (err) {
        if (attempt === 0)
          this.log.warn({ reason: (err as Error).message }, 'backlog not read; trying again');
        await delay(BACKLOG_RETRY_MS[Math.min(attempt, BACKLOG_RETRY_MS.length - 1)]!);
      }
    }
    return [];
  }

  /** Closes the connection (4408) when a message written on it has waited for its ack past the timeout. */
  closeIfAckOverdue(nowMs: number): void {
    const oldest = this.unacked?.values().next();
    if (!oldest || oldest.done || nowMs - oldest.value < this.ctx.config.ackTimeoutMs) return;
    this.close(4408, 'ack timeout', 'ack_timeout');
  }

  protected isUnacked(id: string): boolean {
    return this.unacked?.has(id) ?? false;
  }

  /** Writes frames the connection does not carry yet; answers those that could not be written. */
  protected write(frames: readonly string[]): string[] {
    let written = 0;
    let skipped = 0;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      const id = messageIdOfFrame(frame);
      if (id !== null && this.isUnacked(id)) {
        skipped += 1;
        continue;
      }
      if (!this.send(frame)) {
        this.ctx.metrics.delivered.inc(written);
        return frames.slice(i);
      }
      if (id !== null) {
        this.unacked ??= new Map();
        this.unacked.set(id, this.ctx.now());
        // A `handled` notice stands for its message: the device has nothing left to ack of the message itself.
        if (isNoticeId(id)) this.unacked.delete(id.slice(0, -NOTICE_SUFFIX.length));
      }
      written += 1;
    }
    this.ctx.metrics.delivered.inc(written);
    if (skipped > 0) this.ctx.metrics.repeats.inc(skipped);
    return [];
  }

  protected onFrame(data: Buffer, isBinary: boolean): void {
    this.missedPongs = 0;
    const now = this.ctx.now();
    const verdict = this.limiter.take(now);
    if (verdict === 'close') {
      this.ctx.metrics.refused.inc({ code: 'RATE_LIMITED' });
      this.close(1008, 'too many frames');
      return;
    }
    const parsed: ParsedFrame = isBinary
      ? { ok: false, op: 'error', error: new BrokerError('INVALID_INPUT', 'frames are JSON text') }
      : parseClientFrame(data.toString('utf8'));
    // SPEC §3: a refused request is answered with its own op and req_id, so the client can tell which one.
    if (verdict === 'refuse' || !parsed.ok) {
      const error = parsed.ok || verdict === 'refuse' ? new BrokerError('RATE_LIMITED') : parsed.error;
      this.ctx.metrics.refused.inc({ code: error.code });
      const op = parsed.ok ? parsed.frame.op : parsed.op;
      const reqId = parsed.ok ? parsed.frame.req_id : parsed.reqId;
      this.send(replyError(op, error, iso(now), reqId));
      return;
    }
    this.ctx.metrics.frames.inc({ op: parsed.frame.op });
    this.ctx.track(this.dispatch(parsed.frame));
  }

  private dispatch(frame: ClientFrame): Promise<void> {
    return this.runFrame(
      frame.op,
      () => this.answer(frame),
      (error) => replyError(frame.op, error, this.time(), 'req_id' in frame ? frame.req_id : undefined),
    );
  }

  private async answer(frame: ClientFrame): Promise<void> {
    if (frame.op === 'ping') return void this.send(replyOk('pong', this.time(), frame.req_id));
    if (frame.op === 'login') return await this.login(frame);
    const identity = this.identity;
    if (identity === null) throw new BrokerError('NOT_LOGGED_IN');
    switch (frame.op) {
      case 'notify':
        return await this.notify(identity, frame);
      case 'ack':
        return await this.ack(identity, ackedIds(frame), ackedNotices(frame));
      case 'handle':
        return await this.handle(identity, frame);
      case 'logout':
        return await this.logout(identity);
      default: {
        const never: never = frame;
        return never;
      }
    }
  }

  /**
   * Runs one frame's work, counted in flight (drain and stop wait for it). A failure is answered with `reply`, the
   * protocol's own error frame, and ends the connection when its condition does (`closeOf`: a bad token, a revoked
   * device, a newer login of the device).
   */
  protected async runFrame(
    op: string,
    work: () => Promise<void>,
    reply: (error: BrokerError) => string,
    closeOf: (error: BrokerError) => number | undefined = (error) => error.spec.close,
  ): Promise<void> {
    this.inFlight += 1;
    try {
      await work();
    } catch (err) {
      const error = isBrokerError(err) ? err : new BrokerError('INTERNAL');
      if (!isBrokerError(err)) this.log.error({ err, conn_id: this.connId, op }, 'frame failed');
      this.ctx.metrics.refused.inc({ code: error.code });
      this.send(reply(error));
      const close = closeOf(error);
      if (close === 4401 || close === 4403 || close === 4409) this.close(close, error.message);
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.whenIdle?.();
    }
  }

  private async login(frame: LoginFrame): Promise<void> {
    if (this.identity !== null || this.isLoggingIn) throw new BrokerError('CONFLICT', 'already logged in');
    this.isLoggingIn = true;
    try {
      const identity = await this.verify(frame);
      await this.recordLogin(identity, () =>
        this.send(
          replyOk('login', this.time(), frame.req_id, { conn_id: this.connId, edge_id: this.ctx.edgeId }),
        ),
      );
    } finally {
      this.isLoggingIn = false;
    }
  }

  /**
   * Records the login of an identified device (DeviceLoggedIn, presence, routes), answers it with `onLoggedIn`,
   * then pushes its backlog. The caller holds `isLoggingIn`.
   */
  protected async recordLogin(identity: Identity, onLoggedIn: () => void): Promise<void> {
    if (this.isClosing) return;
    const presence: Presence = {
      conn_id: this.connId,
      edge_id: this.ctx.edgeId,
      shop_id: identity.shopId,
      client_id: identity.clientId,
      type: identity.type,
      connected_at: this.connectedAt,
      remote_addr: this.remoteAddr,
      ...(identity.isLegacy ? { legacy: true } : {}),
    };
    const event = createEvent({
      type: 'DeviceLoggedIn',
      shopId: identity.shopId,
      source: this.ctx.source,
      nowMs: this.ctx.now(),
      data: {
        client_id: identity.clientId,
        type: identity.type,
        conn_id: this.connId,
        edge_id: this.ctx.edgeId,
        remote_addr: this.remoteAddr,
        ...(identity.isLegacy ? { legacy: true } : {}),
      },
    });
    // Listed on this edge before the login is recorded: should the edge die in between, the dead-edge sweep
    // still finds the connection and records its close. On one Redis the listing and the login go out in one
    // write, in that order; on a Cluster the listing's reply is awaited first.
    const listed = this.ctx.list(presence);
    if (!this.ctx.listsInOrder) await listed;
    // Routed from now on: a push can arrive as soon as the login is in Redis. It is held until the backlog is
    // written (pushBacklog), so nothing overtakes an older message.
    this.held = [];
    this.ctx.route(this);
    let replaced: Presence | null;
    let backlog: string[];
    try {
      const credential = identity.isLegacy ? LEGACY_LOGIN : identity.tokenId;
      [, { replaced, backlog }] = await Promise.all([
        listed,
        this.ctx.eventLog.login(event, credential, presence),
      ]);
    } catch (err) {
      const held = this.held;
      this.held = null;
      this.ctx.unroute(this, held.flat());
      this.ctx.unlist(this.connId);
      throw err;
    }
    this.identity = identity;
    this.stopLoginTimer();
    this.ctx.adopt(this, replaced);
    onLoggedIn();
    // The session's logger is made per line (see `log`): not at all when the line would not be written.
    if (this.ctx.log.isLevelEnabled('info')) this.log.info({ event_id: event.id }, 'device logged in');
    // SPEC §5.4: the undelivered messages, oldest first, right after the login reply. Tracked apart from the
    // login frame: while Redis is away it keeps trying until the socket closes, and a drain must not wait for it
    // before closing the socket.
    this.ctx.track(this.pushBacklog(backlog).then((unwritten) => this.ctx.bounce(unwritten)));
    // The socket went away while the login was being recorded: forget it and record its close too.
    if (this.hasClosed && !this.isCloseRecorded) {
      this.isCloseRecorded = true;
      this.ctx.forget(this);
      await this.recordClose(identity, this.closeReason ?? 'dropped', this.closeCode);
    }
  }

  /** The token's identity; TOKEN_INVALID when the frame names another shop, device or type than it. */
  private async verify(frame: LoginFrame): Promise<Identity> {
    const claims = await this.ctx.tokens.verify(frame.token);
    if (
      (frame.shop_id !== undefined && frame.shop_id !== claims.shop_id) ||
      (frame.client_id !== undefined && frame.client_id !== claims.client_id) ||
      (frame.type !== undefined && normaliseDeviceType(frame.type) !== claims.type)
    ) {
      throw new BrokerError('TOKEN_INVALID', 'shop_id, client_id or type does not match the token');
    }
    return {
      shopId: claims.shop_id,
      clientId: claims.client_id,
      type: claims.type,
      tokenId: claims.token_id,
    };
  }

  private async notify(identity: Identity, frame: NotifyFrame): Promise<void> {
    const now = this.ctx.now();
    const event = createEvent({
      type: 'NotifyRequested',
      shopId: identity.shopId,
      source: this.ctx.source,
      nowMs: now,
      id: newEventId(now),
      data: {
        req_id: frame.req_id,
        from_client_id: identity.clientId,
        from_type: identity.type,
        audience: identity.type === 'sub' ? 'mains' : 'subs',
        recipients: [],
        table_id: frame.table_id,
        type: frame.type,
        status: frame.status ?? 0,
        data: frame.data ?? {},
        user_info: frame.user_info ?? {},
      },
    });
    const outcome = await this.ctx.eventLog.appendNotify(event, {
      tokenId: identity.tokenId,
      type: identity.type,
      connId: this.connId,
    });
    this.ctx.metrics.notifyMs.observe(this.ctx.now() - now);
    this.send(replyOk('notify', this.time(), frame.req_id, { event_id: outcome.eventId }));
    if (!outcome.isDuplicate && this.ctx.log.isLevelEnabled('debug'))
      this.log.debug({ event_id: outcome.eventId }, 'notify appended');
  }

  private async ack(identity: Identity, ids: string[], notices: string[]): Promise<void> {
    for (const id of [...ids, ...notices]) {
      if (parseMessageId(id)?.clientId !== identity.clientId)
        throw new BrokerError('NOT_YOUR_MESSAGE', `message ${id} is addressed to another device`);
    }
    await this.ctx.ackTurn();
    if (ids.length > 0) {
      await this.ctx.eventLog.ack(
        identity.shopId,
        identity.clientId,
        this.ctx.source,
        ids,
        newEventId(),
        this.ctx.now(),
      );
    }
    if (notices.length > 0) await this.ctx.ackNotices(identity.shopId, identity.clientId, notices);
    // Only once recorded: an ack Redis did not take leaves the message to the ack timeout and the next backlog.
    for (const id of ids) this.unacked?.delete(id);
    for (const id of notices) this.unacked?.delete(noticeIdOf(id));
    if (this.unacked?.size === 0) this.unacked = undefined;
  }

  /** SPEC §10: a main device handles the request one of its own messages belongs to. */
  private async handle(identity: Identity, frame: HandleFrame): Promise<void> {
    if (identity.type !== 'main') throw new BrokerError('MAIN_ONLY');
    if (parseMessageId(frame.id)?.clientId !== identity.clientId)
      throw new BrokerError('NOT_YOUR_MESSAGE', `message ${frame.id} is addressed to another device`);
    await this.ctx.acksAhead();
    const outcome = await this.ctx.handleRequest({
      shopId: identity.shopId,
      messageId: frame.id,
      status: frame.status,
      by: { kind: 'device', client_id: identity.clientId },
      source: this.ctx.source,
      nowMs: this.ctx.now(),
    });
    if (outcome.kind === 'conflict') {
      const { by, at, status } = outcome.first;
      throw new BrokerError('ALREADY_HANDLED', `already handled by ${describeHandler(by)}`, {
        handled_by: by,
        handled_at: at,
        status,
      });
    }
    // The device handled its copy: it needs no ack timeout for it any more.
    this.unacked?.delete(frame.id);
    if (this.unacked?.size === 0) this.unacked = undefined;
    this.send(replyOk('handle', this.time(), frame.req_id, { id: frame.id, event_id: outcome.requestId }));
    if (outcome.kind === 'handled' && this.ctx.log.isLevelEnabled('info'))
      this.log.info({ event_id: outcome.eventId, request: outcome.requestId }, 'request handled');
  }

  protected async logout(identity: Identity): Promise<void> {
    this.isCloseRecorded = true;
    await this.recordClose(identity, 'logout', 1000);
    this.close(1000, 'logout');
  }

  /** A frame ws refused (too large, not UTF-8, not WebSocket) or a broken socket: only this one is closed. */
  private onSocketError(err: Error): void {
    const code = closeCodeOfWsError((err as Error & { code?: unknown }).code);
    if (code !== undefined && !this.isClosing) {
      this.isClosing = true;
      this.closeCode = code;
      this.closeReason = closeReasonOf(code);
    }
    this.log.info({ conn_id: this.connId, reason: err.message, close_code: code }, 'socket error');
  }

  private onClosed(code: number): void {
    this.isClosing = true;
    this.hasClosed = true;
    this.closeCode ??= code;
    this.closeReason ??= closeReasonOf(code);
    this.stopLoginTimer();
    this.whenIdle?.();
    this.ctx.forget(this);
    const identity = this.identity;
    if (identity === null || this.isCloseRecorded) return;
    this.isCloseRecorded = true;
    this.ctx.track(this.recordClose(identity, this.closeReason, this.closeCode));
  }

  private async recordClose(identity: Identity, reason: string, code: number | undefined): Promise<void> {
    const event = createEvent({
      type: 'ConnectionClosed',
      shopId: identity.shopId,
      source: this.ctx.source,
      nowMs: this.ctx.now(),
      data: {
        client_id: identity.clientId,
        conn_id: this.connId,
        edge_id: this.ctx.edgeId,
        reason,
        ...(code === undefined ? {} : { close_code: code }),
      },
    });
    await this.ctx.recordClose(event);
  }

  /** Cleared and dropped: a cleared Timeout still held would cost each idle connection its 120 bytes. */
  private stopLoginTimer(): void {
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
  }

  /**
   * The session's logger, made when a line is logged: a child kept per session costs each idle connection
   * ~0.35 KiB, and a session logs a few lines in its life.
   */
  protected get log(): Logger {
    const identity = this.identity;
    return identity === null
      ? this.ctx.log
      : this.ctx.log.child({ shop_id: identity.shopId, client_id: identity.clientId, conn_id: this.connId });
  }

  protected time(): string {
    return iso(this.ctx.now());
  }
}

function describeHandler(by: HandledBy): string {
  return by.kind === 'device' ? `device ${by.client_id}` : 'the back office';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
