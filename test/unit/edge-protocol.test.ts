import { describe, expect, it } from 'vitest';
import {
  closeCodeOfWsError,
  closeReasonOf,
  closeReasonText,
  isSendableCloseCode,
  RateLimiter,
  replyError,
  replyOk,
} from '#edge';
import { BrokerError } from '#events';

const T0 = Date.UTC(2025, 0, 1);
const TIME = new Date(T0).toISOString();

describe('when a connection sends frames', () => {
  it('lets a burst through, then refuses, then closes if it persists', () => {
    const limiter = new RateLimiter(50, 100, T0, 20);
    const verdicts = Array.from({ length: 125 }, () => limiter.take(T0));
    expect(verdicts.slice(0, 100).every((v) => v === 'ok')).toBe(true);
    expect(verdicts.slice(100, 119).every((v) => v === 'refuse')).toBe(true);
    expect(verdicts[119]).toBe('close');
  });

  it('refills at the rate, and a frame that passes forgives earlier strikes', () => {
    const limiter = new RateLimiter(10, 2, T0, 3);
    expect([limiter.take(T0), limiter.take(T0), limiter.take(T0), limiter.take(T0)]).toEqual([
      'ok',
      'ok',
      'refuse',
      'refuse',
    ]);
    expect(limiter.take(T0 + 100)).toBe('ok'); // 10/s: one token per 100 ms
    expect(limiter.take(T0 + 100)).toBe('refuse');
    expect(limiter.take(T0 + 100)).toBe('refuse');
    expect(limiter.take(T0 + 100)).toBe('close');
  });

  it('never holds more than its burst, however long the connection was quiet', () => {
    const limiter = new RateLimiter(50, 3, T0);
    const later = T0 + 3_600_000;
    expect([1, 2, 3, 4].map(() => limiter.take(later))).toEqual(['ok', 'ok', 'ok', 'refuse']);
  });
});

describe('when the edge answers', () => {
  it('carries op, code, msg, time and the req_id in every reply', () => {
    expect(JSON.parse(replyOk('notify', TIME, 'r1', { event_id: 'E' }))).toEqual({
      op: 'notify',
      code: 0,
      msg: 'ok',
      time: TIME,
      req_id: 'r1',
      data: { event_id: 'E' },
    });
    expect(JSON.parse(replyOk('login', TIME))).toEqual({ op: 'login', code: 0, msg: 'ok', time: TIME });
  });

  it('answers a refusal with its catalogue code and message', () => {
    expect(JSON.parse(replyError('notify', new BrokerError('LOG_UNAVAILABLE'), TIME, 'r2'))).toEqual({
      op: 'notify',
      code: 503,
      msg: 'event log unavailable: the outcome is unknown; retry with the same req_id',
      time: TIME,
      req_id: 'r2',
    });
    expect(JSON.parse(replyError('notify', new BrokerError('NO_MAIN_DEVICE'), TIME))).toMatchObject({
      code: 404,
      msg: 'shop has no registered main device',
    });
    expect(JSON.parse(replyError('error', new BrokerError('RATE_LIMITED'), TIME)).code).toBe(429);
  });

  it('records each close code under a reason', () => {
    expect(
      [1000, 1005, 1001, 1008, 1009, 1013, 4000, 4401, 4403, 4408, 4409, 1006].map((code) =>
        closeReasonOf(code),
      ),
    ).toEqual([
      'closed',
      'closed',
      'drain',
      'rate_limited',
      'frame_too_large',
      'slow_reader',
      'operator',
      'token_invalid',
      'revoked',
      'login_timeout',
      'replaced',
      'dropped',
    ]);
  });

  it('records the close code ws sent when it refused a frame, not the 1006 it reports', () => {
    expect(closeCodeOfWsError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')).toBe(1009);
    expect(closeCodeOfWsError('WS_ERR_INVALID_UTF8')).toBe(1007);
    expect(closeCodeOfWsError('WS_ERR_INVALID_OPCODE')).toBe(1002);
    expect(closeCodeOfWsError('ECONNRESET')).toBeUndefined();
    expect(closeCodeOfWsError(undefined)).toBeUndefined();
  });
});

describe('when the edge closes a socket', () => {
  it('cuts a reason to the 123 bytes a close frame carries, on a character boundary', () => {
    expect(closeReasonText('device revoked')).toBe('device revoked');
    const long = '撤销'.repeat(100); // 3 bytes a character
    const cut = closeReasonText(long);
    expect(Buffer.byteLength(cut)).toBe(123);
    expect(long.startsWith(cut)).toBe(true);
    expect(Buffer.byteLength(closeReasonText('😀'.repeat(40)))).toBe(120); // 4 bytes a character
  });

  it('sends only the close codes RFC 6455 lets a server send', () => {
    for (const code of [1000, 1001, 1008, 1011, 1013, 4000, 4403, 4409])
      expect(isSendableCloseCode(code)).toBe(true);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2000, 5000, 4000.5, Number.NaN])
      expect(isSendableCloseCode(code)).toBe(false);
  });
});
