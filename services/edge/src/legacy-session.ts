// One socket of a device speaking the original system's protocol (SPEC §9.1): its frames and replies, a login
// without a token (the client certificate was checked at the upgrade, the legacy mark is checked with the login),
// and delivery recorded when a push is written, since the device cannot ack. Everything else — presence, the
// backlog, rate limits, closes — is the v1 session's, and every action becomes the same events as in v1.
import {
  BrokerError,
  createEvent,
  isNoticeId,
  LEGACY_NO_MAIN_DEVICE,
  type LegacyFrame,
  type LegacyLogin,
  type LegacyNotify,
  legacyErrorFrame,
  legacyPushOf,
  messageIdOfFrame,
  NOTICE_SUFFIX,
  newEventId,
  parseLegacyFrame,
} from '#events';
import { delay } from '#runtime';
import { type Identity, Session } from './session';

/** Waits between tries of recording a write while Redis is away, doubling up to the last. */
const RECORD_RETRY_MS = [100, 200, 500, 1000, 2000];

export class LegacySession extends Session {
  protected override onFrame(data: Buffer, isBinary: boolean): void {
    this.missedPongs = 0;
    const now = this.ctx.now();
    const verdict = this.limiter.take(now);
    if (verdict === 'close') {
      this.ctx.metrics.refused.inc({ code: 'RATE_LIMITED' });
      this.close(1008, 'too many frames');
      return;
    }
    if (verdict === 'refuse' || isBinary) {
      const error = isBinary
        ? new BrokerError('INVALID_INPUT', 'frames are JSON text')
        : new BrokerError('RATE_LIMITED');
      this.ctx.metrics.refused.inc({ code: error.code });
      this.send(legacyErrorFrame(error.message, now));
      return;
    }
    const text = data.toString('utf8');
    const parsed = parseLegacyFrame(text);
    if (parsed.kind === 'echo') {
      this.ctx.metrics.frames.inc({ op: 'legacy_echo' });
      // The original ran these (reload the server, list every connection, write to any socket); never here.
      if (parsed.isAdminCommand)
        this.log.warn({ conn_id: this.connId, size: text.length }, 'from_admin command echoed, not run');
      this.send(text);
      return;
    }
    if (parsed.kind === 'refused') {
      this.ctx.metrics.refused.inc({ code: parsed.error.code });
      this.send(legacyErrorFrame(parsed.error.message, now));
      // SPEC §9.1: a login that cannot be accepted is answered and closed with 4401.
      if (parsed.op === 'login' && this.identity === null) this.close(4401, parsed.error.message);
      return;
    }
    this.ctx.metrics.frames.inc({ op: `legacy_${parsed.frame.op}` });
    this.ctx.track(this.dispatchLegacy(parsed.frame));
  }

  /**
   * Writes pushes in the original's shapes: a message for a main as `{id, status, table_id, type, title}`, a
   * broadcast for a sub as the notify's fields. Frames the original protocol has no shape for are not written. What
   * was written is recorded delivered (`via: socket-write`): the device has no ack to send.
   */
  protected override write(frames: readonly string[]): string[] {
    const written: string[] = [];
    const notices: string[] = [];
    let count = 0;
    for (let i = 0; i < frames.length; i++) {
      const push = legacyPushOf(frames[i]!);
      if (push === null) {
        // SPEC §10: a legacy main gets no `handled` frame (its firmware knows none); its copy is handled all the
        // same. The notice is taken as received, so it is not pushed again at every login.
        const tracked = messageIdOfFrame(frames[i]!);
        if (tracked !== null && isNoticeId(tracked)) notices.push(tracked.slice(0, -NOTICE_SUFFIX.length));
        continue;
      }
      const id = push.messageId;
      if (id !== null && this.isUnacked(id)) {
        this.ctx.metrics.repeats.inc();
        continue;
      }
      if (!this.send(push.text)) {
        this.ctx.metrics.delivered.inc(count);
        return frames.slice(i);
      }
      count += 1;
      if (id !== null) {
        this.unacked ??= new Map();
        this.unacked.set(id, this.ctx.now());
        written.push(id);
      }
    }
    this.ctx.metrics.delivered.inc(count);
    if (written.length > 0) this.ctx.track(this.recordWritten(written));
    if (notices.length > 0 && this.identity !== null) {
      const { shopId, clientId } = this.identity;
      this.ctx.track(
        this.ctx.ackNotices(shopId, clientId, notices).then(
          () => undefined,
          // Still pending: the next login takes it as received again.
          (err: Error) => this.log.warn({ reason: err.message }, 'notice for a legacy device not cleared'),
        ),
      );
    }
    return [];
  }

  /**
   * SPEC §9.1: a push written to a legacy main's socket counts as delivered. Recorded like an ack, so the message
   * leaves the device's backlog; while Redis is away it keeps trying as long as the socket is open. A write that
   * could not be recorded leaves the message pending: the ack timeout closes the connection, and the next login's
   * backlog writes it again (at least once, never lost).
   */
  private async recordWritten(ids: string[]): Promise<void> {
    const identity = this.identity;
    if (identity === null) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const now = this.ctx.now();
        await this.ctx.eventLog.ack(
          identity.shopId,
          identity.clientId,
          this.ctx.source,
          ids,
          newEventId(now),
          now,
          'socket-write',
        );
        for (const id of ids) this.unacked?.delete(id);
        if (this.unacked?.size === 0) this.unacked = undefined;
        return;
      } catch (err) {
        if (attempt === 0)
          this.log.warn(
            { reason: (err as Error).message, count: ids.length },
            'socket write not recorded yet',
          );
        if (this.isClosing) return;
        await delay(RECORD_RETRY_MS[Math.min(attempt, RECORD_RETRY_MS.length - 1)]!);
      }
    }
  }

  /** Errors in the original's shape. A refused login closes with 4401 (SPEC §9.1); else as v1 closes. */
  private dispatchLegacy(frame: LegacyFrame): Promise<void> {
    return this.runFrame(
      frame.op,
      () => this.answerLegacy(frame),
      (error) => legacyErrorFrame(legacyMessageOf(error), this.ctx.now()),
      (error) => {
        // SPEC §9.1: a login of a device not registered, revoked or not marked legacy is closed with 4401.
        const isRefusedLogin = error.code === 'TOKEN_INVALID' || error.code === 'DEVICE_REVOKED';
        return frame.op === 'login' && isRefusedLogin ? 4401 : error.spec.close;
      },
    );
  }

  private async answerLegacy(frame: LegacyFrame): Promise<void> {
    if (frame.op === 'login') return await this.legacyLogin(frame);
    const identity = this.identity;
    if (frame.op === 'logout') {
      if (identity === null) return this.close(1000, 'logout');
      return await this.logout(identity);
    }
    if (identity === null) throw new BrokerError('NOT_LOGGED_IN');
    return await this.legacyNotify(identity, frame);
  }

  private async legacyLogin(frame: LegacyLogin): Promise<void> {
    if (this.identity !== null || this.isLoggingIn) throw new BrokerError('CONFLICT', 'already logged in');
    this.isLoggingIn = true;
    try {
      const identity: Identity = {
        shopId: frame.shopId,
        clientId: frame.clientId,
        type: frame.type,
        tokenId: '',
        isLegacy: true,
      };
      // The original answered a login with nothing: the device learns of a refusal only.
      await this.recordLogin(identity, () => undefined);
    } finally {
      this.isLoggingIn = false;
    }
  }

  /**
   * A sub's notify: NotifyRequested for every main, as v1. A main's: a broadcast to the shop's subs. No req_id, so
   * the event id stands in for it and nothing is remembered to match a repeat (a legacy device's retry is a second
   * notify). The original answered a notify with nothing.
   */
  private async legacyNotify(identity: Identity, frame: LegacyNotify): Promise<void> {
    if (frame.shopId !== identity.shopId || frame.fromClientId !== identity.clientId)
      throw new BrokerError('INVALID_INPUT', "shop_id and from_client_id must be the logged-in device's");
    if (frame.fromType !== undefined && frame.fromType !== identity.type)
      throw new BrokerError('INVALID_INPUT', 'from_client_type is not the type of the logged-in device');
    const now = this.ctx.now();
    const id = newEventId(now);
    const event = createEvent({
      type: 'NotifyRequested',
      shopId: identity.shopId,
      source: this.ctx.source,
      nowMs: now,
      id,
      data: {
        req_id: id,
        from_client_id: identity.clientId,
        from_type: identity.type,
        audience: identity.type === 'sub' ? 'mains' : 'subs',
        recipients: [],
        table_id: frame.table_id,
        type: frame.type,
        status: frame.status,
        data: frame.data,
        user_info: frame.user_info,
      },
    });
    await this.ctx.eventLog.appendNotify(event, {
      tokenId: '',
      type: identity.type,
      connId: this.connId,
      remember: false,
    });
    this.ctx.metrics.notifyMs.observe(this.ctx.now() - now);
  }
}

/** The message of a refusal as a legacy device reads it. */
function legacyMessageOf(error: BrokerError): string {
  switch (error.code) {
    case 'NO_MAIN_DEVICE':
      return LEGACY_NO_MAIN_DEVICE;
    case 'LOG_UNAVAILABLE':
      // The v1 message asks for a retry with the same req_id, which this protocol does not have.
      return 'event log unavailable: the outcome is unknown, and a retry may record the notify twice';
    default:
      return error.message;
  }
}
