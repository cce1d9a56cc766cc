import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF } from '#client';
import { settingsOf } from '../../libs/client/src/options';

const required = { url: 'ws://127.0.0.1:8080/ws', token: 't0k3n' };

describe('when a client is configured', () => {
  it('fills in the documented defaults', () => {
    const settings = settingsOf(required);
    expect(settings).toMatchObject({
      autoAck: true,
      reconnect: true,
      backoff: DEFAULT_BACKOFF,
      notifyTimeoutMs: 30_000,
      loginTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      maxFrameBytes: 65_536,
      dedupIds: 10_000,
      rejectUnauthorized: true,
    });
    expect(settings.newReqId()).not.toBe(settings.newReqId());
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('treats an option given as undefined as not given', () => {
    const settings = settingsOf({
      ...required,
      autoAck: undefined,
      backoff: { baseMs: undefined, maxMs: 2_000 },
    });
    expect(settings.autoAck).toBe(true);
    expect(settings.backoff).toEqual({ baseMs: DEFAULT_BACKOFF.baseMs, maxMs: 2_000 });
  });

  it('keeps what was given', () => {
    const settings = settingsOf({ ...required, autoAck: false, reconnect: false, shopId: 's1', type: '主' });
    expect(settings).toMatchObject({ autoAck: false, reconnect: false, shopId: 's1', type: '主' });
  });

  it('refuses a missing url or token and a backoff that cannot work', () => {
    expect(() => settingsOf({ ...required, url: '' })).toThrow(/url/);
    expect(() => settingsOf({ ...required, token: '' })).toThrow(/token/);
    expect(() => settingsOf({ ...required, backoff: { baseMs: 0 } })).toThrow(RangeError);
    expect(() => settingsOf({ ...required, backoff: { baseMs: 1_000, maxMs: 10 } })).toThrow(RangeError);
  });
});
