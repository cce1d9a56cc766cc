// ◇ Pure pieces of the edge protocol: reply frames, close reasons, and the per-connection rate limiter.
import type { BrokerError, ReplyFrame } from '#events';

export function replyOk(op: string, time: string, reqId?: string, data?: Record<string, unknown>): string {
  const frame: ReplyFrame = { op, code: 0, msg: 'ok', time };
  if (reqId !== undefined) frame.req_id = reqId;
  if (data !== undefined) frame.data = data;
  return JSON.stringify(frame);
}

export function replyError(op: string, error: BrokerError, time: string, reqId?: string): string {
  const frame: ReplyFrame = { op, code: error.spec.ws ?? error.spec.http ?? 500, msg: error.message, time };
  if (reqId !== undefined) frame.req_id = reqId;
  if (error.data !== undefined) frame.data = error.data;
  return JSON.stringify(frame);
}

/** RFC 6455 §5.5: a control frame carries at most 125 bytes, two of them the close code. */
const MAX_CLOSE_REASON_BYTES = 123;

/** A close reason cut to what a close frame can carry, on a character boundary (ws throws past the limit). */
export function closeReasonText(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let text = '';
  for (const char of reason) {
    if (Buffer.byteLength(text + char) > MAX_CLOSE_REASON_BYTES) break;
    text += char;
  }
  return text;
}

/** A code a server may send in a close frame (RFC 6455 §7.4; ws throws on any other). */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))
  );
}

/** What ConnectionClosed records for a close code. */
export function closeReasonOf(code: number): string {
  switch (code) {
    case 1000:
    case 1005: // a close frame without a status: still the peer closing cleanly
      return 'closed';
    case 1001:
      return 'drain';
    case 1002:
      return 'protocol_error';
    case 1007:
      return 'invalid_utf8';
    case 1008:
      return 'rate_limited';
    case 1009:
      return 'frame_too_large';
    case 1013:
      return 'slow_reader';
    case 4000:
      return 'operator';
    case 4401:
      return 'token_invalid';
    case 4403:
      return 'revoked';
    case 4408:
      return 'login_timeout';
    case 4409:
      return 'replaced';
    default:
      return 'dropped';
  }
}

/**
 * The close code ws sent when it refused a frame (its receiver errors, `lib/receiver.js`). ws reports the close
 * itself as 1006, because it stops reading before the peer answers; the edge records what it actually sent.
 */
export function closeCodeOfWsError(code: unknown): number | undefined {
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
    return 1009;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return 1008;
  return 1002;
}

/**
 * A token bucket: `ratePerS` frames a second with bursts of `burst`. After `strikesToClose` refused frames in a
 * row, the connection is closed (SPEC §3: 429, then 1008 if it persists).
 */
export class RateLimiter {
  private tokens: number;
  private lastMs: number;
  private strikes = 0;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    nowMs: number,
    private readonly strikesToClose = 20,
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** 'ok' to go on, 'refuse' to answer 429, 'close' to close with 1008. */
  take(nowMs: number): 'ok' | 'refuse' | 'close' {
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerS) / 1000);
    this.lastMs = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.strikes = 0;
      return 'ok';
    }
    this.strikes += 1;
    return this.strikes >= this.strikesToClose ? 'close' : 'refuse';
  }
}
