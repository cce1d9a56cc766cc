import { describe, expect, it } from 'vitest';
import { ClientError, closeCodeName, finalFailureOf, isFinalClose, isFinalLoginCode } from '#client';

describe('when the edge closes the socket', () => {
  it('gives up after a bad token, a revoked device or a newer login of the same device', () => {
    expect(isFinalClose(4401)).toBe(true);
    expect(isFinalClose(4403)).toBe(true);
    expect(isFinalClose(4409)).toBe(true);
  });

  it('reconnects after a drain, a lost connection, an internal error, a slow read or an operator close', () => {
    for (const code of [1000, 1001, 1005, 1006, 1008, 1009, 1011, 1013, 4000, 4408]) {
      expect(isFinalClose(code), `close ${code}`).toBe(false);
    }
  });
});

describe('when the edge refuses a login', () => {
  it('gives up when the request itself is wrong', () => {
    for (const code of [400, 401, 403, 404, 409]) expect(isFinalLoginCode(code), `code ${code}`).toBe(true);
  });

  it('tries again when the refusal is a passing condition', () => {
    for (const code of [408, 429, 500, 503]) expect(isFinalLoginCode(code), `code ${code}`).toBe(false);
  });
});

describe('when a close code is described', () => {
  it('names it from the error catalogue or the WebSocket standard', () => {
    expect(closeCodeName(4401)).toBe('TOKEN_INVALID');
    expect(closeCodeName(4409)).toBe('REPLACED');
    expect(closeCodeName(1001)).toBe('DRAINING');
    expect(closeCodeName(1006)).toBe('ABNORMAL');
    expect(closeCodeName(3999)).toBeUndefined();
  });

  it('puts the reply code, the close code and its name in the error', () => {
    const err = new ClientError('LOGIN_REFUSED', { code: 401, closeCode: 4401, msg: 'bad or expired token' });
    expect(err.code).toBe(401);
    expect(err.closeCode).toBe(4401);
    expect(err.msg).toBe('bad or expired token');
    expect(err.message).toBe('login refused: code 401: close 4401 TOKEN_INVALID: bad or expired token');
  });

  it('uses the close code as the code when there was no reply', () => {
    const err = new ClientError('CLOSED_FINAL', { closeCode: 4403 });
    expect(err.code).toBe(4403);
    expect(err.message).toBe('connection closed for good: close 4403 DEVICE_REVOKED');
  });
});

describe('when the client decides whether a close ends it', () => {
  const lost = new ClientError('CONNECTION_LOST', { closeCode: 1006 });

  it('ends after a refused login, keeping the reply code and adding the close code', () => {
    const refused = new ClientError('LOGIN_REFUSED', { code: 401, msg: 'bad or expired token' });
    expect(finalFailureOf(4401, 'bad or expired token', refused)).toMatchObject({
      kind: 'LOGIN_REFUSED',
      code: 401,
      closeCode: 4401,
      msg: 'bad or expired token',
    });
  });

  it('ends after a final close code even without a reply', () => {
    expect(finalFailureOf(4409, 'replaced', lost)).toMatchObject({
      kind: 'CLOSED_FINAL',
      code: 4409,
      msg: 'replaced',
    });
  });

  it('goes on after a login refused for a passing reason or a lost connection', () => {
    const unavailable = new ClientError('LOGIN_REFUSED', { code: 503, msg: 'event log unavailable' });
    expect(finalFailureOf(1006, '', unavailable)).toBeUndefined();
    expect(finalFailureOf(1001, 'draining', lost)).toBeUndefined();
  });
});
