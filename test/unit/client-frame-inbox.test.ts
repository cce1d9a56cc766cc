import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MessageFrame, ReplyFrame } from '#events';
import { FrameInbox } from '../../libs/client/src/frame-inbox';

function message(id: string): MessageFrame {
  return {
    op: 'message',
    id,
    shop_id: 's1',
    table_id: 1,
    type: 'add_dish',
    status: 0,
    title: '',
    data: {},
    user_info: {},
    from_client_id: 'sub1',
    created_at: '2024-01-01T00:00:00Z',
    attempt: 1,
  };
}

const pong: ReplyFrame = { op: 'pong', code: 0, msg: 'ok', time: '2024-01-01T00:00:00Z' };

afterEach(() => {
  vi.useRealTimers();
});

describe('when a caller awaits the next frame', () => {
  it('gets a frame that arrived before the call', async () => {
    const inbox = new FrameInbox(100);
    inbox.pushMessage(message('m1'));
    await expect(inbox.next('message', undefined, 1_000)).resolves.toMatchObject({ id: 'm1' });
  });

  it('gets a frame that arrives after the call', async () => {
    const inbox = new FrameInbox(100);
    const next = inbox.next('pong', undefined, 1_000);
    inbox.push(pong);
    await expect(next).resolves.toBe(pong);
  });

  it('gets each frame once, oldest first', async () => {
    const inbox = new FrameInbox(100);
    inbox.pushMessage(message('m1'));
    inbox.pushMessage(message('m2'));
    expect((await inbox.next('message', undefined, 1_000)).id).toBe('m1');
    expect((await inbox.next('message', undefined, 1_000)).id).toBe('m2');
  });

  it('skips frames of another op or failing the predicate, and leaves them for others', async () => {
    const inbox = new FrameInbox(100);
    inbox.push(pong);
    inbox.pushMessage(message('m1'));
    inbox.pushMessage(message('m2'));
    expect((await inbox.next('message', (frame) => frame.id === 'm2', 1_000)).id).toBe('m2');
    expect(await inbox.next('pong', undefined, 1_000)).toBe(pong);
    expect((await inbox.next('message', undefined, 1_000)).id).toBe('m1');
  });

  it('hands one arriving frame to one waiter only', async () => {
    const inbox = new FrameInbox(100);
    const first = inbox.next('message', undefined, 1_000);
    const second = inbox.next('message', undefined, 1_000);
    inbox.pushMessage(message('m1'));
    inbox.pushMessage(message('m2'));
    expect((await first).id).toBe('m1');
    expect((await second).id).toBe('m2');
  });

  it('rejects after the timeout when nothing matches', async () => {
    vi.useFakeTimers();
    const inbox = new FrameInbox(100);
    const next = inbox.next('message', undefined, 250);
    const assertion = expect(next).rejects.toMatchObject({ kind: 'TIMEOUT' });
    await vi.advanceTimersByTimeAsync(250);
    await assertion;
  });

  it('rejects the waiter whose predicate throws, and keeps the frame for others', async () => {
    const inbox = new FrameInbox(100);
    const broken = inbox.next(
      'message',
      () => {
        throw new Error('bad predicate');
      },
      1_000,
    );
    inbox.pushMessage(message('m1'));
    await expect(broken).rejects.toThrow('bad predicate');
    expect((await inbox.next('message', undefined, 1_000)).id).toBe('m1');
  });

  it('rejects waiting and later callers with the reason once the client is closed for good', async () => {
    const inbox = new FrameInbox(100);
    const waiting = inbox.next('message', undefined, 1_000);
    inbox.fail(new Error('revoked'));
    await expect(waiting).rejects.toThrow('revoked');
    await expect(inbox.next('message', undefined, 1_000)).rejects.toThrow('revoked');
  });

  it('still hands out frames that arrived before the failure', async () => {
    const inbox = new FrameInbox(100);
    inbox.push(pong);
    inbox.fail(new Error('revoked'));
    await expect(inbox.next('pong', undefined, 1_000)).resolves.toBe(pong);
  });
});

describe('when messages are listed', () => {
  it('lists every message handed to the app, even those taken by next()', async () => {
    const inbox = new FrameInbox(100);
    inbox.pushMessage(message('m1'));
    await inbox.next('message', undefined, 1_000);
    inbox.pushMessage(message('m2'));
    inbox.push(pong);
    expect(inbox.messages().map((frame) => frame.id)).toEqual(['m1', 'm2']);
  });

  it('keeps at least the last `limit` messages and forgets older ones', () => {
    const inbox = new FrameInbox(8);
    for (let i = 0; i < 100; i++) inbox.pushMessage(message(`m${i}`));
    const ids = inbox.messages().map((frame) => frame.id);
    expect(ids.length).toBeGreaterThanOrEqual(8);
    expect(ids.length).toBeLessThanOrEqual(9);
    expect(ids.at(-1)).toBe('m99');
    expect(ids).not.toContain('m0');
  });

  it('keeps nothing with a limit of 0, yet still serves a waiting caller', async () => {
    const inbox = new FrameInbox(0);
    const next = inbox.next('message', undefined, 1_000);
    inbox.pushMessage(message('m1'));
    expect((await next).id).toBe('m1');
    inbox.pushMessage(message('m2'));
    expect(inbox.messages()).toEqual([]);
  });
});
