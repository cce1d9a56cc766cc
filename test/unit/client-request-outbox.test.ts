import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClientFrame, NotifyFrame, ReplyFrame } from '#events';
import { type HandleRequest, RequestOutbox } from '../../libs/client/src/request-outbox';

/** Stands in for the logged-in connection: records what would go on the wire, or refuses when offline. */
function wire() {
  const sent: ClientFrame[] = [];
  let isOnline = true;
  const outbox = new RequestOutbox({
    send(text) {
      if (!isOnline) return false;
      sent.push(JSON.parse(text));
      return true;
    },
    backoff: { baseMs: 100, maxMs: 1_000 },
    random: () => 0.5,
    maxFrameBytes: 1_024,
  });
  return {
    outbox,
    sent,
    setOnline(value: boolean) {
      isOnline = value;
    },
  };
}

function notify(reqId: string, extra: Partial<NotifyFrame> = {}): NotifyFrame {
  return { op: 'notify', req_id: reqId, table_id: 'T1', type: 'add_dish', data: { dish: 'tea' }, ...extra };
}

function handle(reqId: string, id = 'E1.pos1', status = 2): HandleRequest {
  return { op: 'handle', id, status, req_id: reqId };
}

function reply(reqId: string, code: number, data?: Record<string, unknown>, op = 'notify'): ReplyFrame {
  return { op, req_id: reqId, code, msg: code === 0 ? 'ok' : 'refused', time: 't', data };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('when a notify is submitted', () => {
  it('sends it at once on a logged-in connection and resolves with the recorded event', async () => {
    const { outbox, sent } = wire();
    const result = outbox.submit(notify('r1'), 5_000);
    expect(sent.map((frame) => frame.req_id)).toEqual(['r1']);
    expect(outbox.settle(reply('r1', 0, { event_id: 'E1' }))).toBe(true);
    await expect(result).resolves.toEqual({ event_id: 'E1', req_id: 'r1' });
    expect(outbox.size).toBe(0);
  });

  it('keeps it until a connection logs in when there is none', async () => {
    const { outbox, sent, setOnline } = wire();
    setOnline(false);
    const result = outbox.submit(notify('r1'), 5_000);
    expect(sent).toEqual([]);
    setOnline(true);
    outbox.sendUnanswered();
    expect(sent.map((frame) => frame.req_id)).toEqual(['r1']);
    outbox.settle(reply('r1', 0, { event_id: 'E1' }));
    await expect(result).resolves.toMatchObject({ event_id: 'E1' });
  });

  it('answers a req_id already pending with the same promise, and sends it once', () => {
    const { outbox, sent } = wire();
    const first = outbox.submit(notify('r1'), 5_000);
    const second = outbox.submit(notify('r1'), 5_000);
    expect(second).toBe(first);
    expect(sent).toHaveLength(1);
  });

  it('refuses a notify over the frame limit without sending it', async () => {
    const { outbox, sent } = wire();
    await expect(
      outbox.submit(notify('big', { data: { blob: 'x'.repeat(2_000) } }), 5_000),
    ).rejects.toMatchObject({
      kind: 'FRAME_TOO_LARGE',
      reqId: 'big',
    });
    expect(sent).toEqual([]);
    expect(outbox.size).toBe(0);
  });
});

describe('when the connection drops before the reply', () => {
  it('sends every unanswered notify again after the next login, same req_id and body, oldest first', () => {
    const { outbox, sent, setOnline } = wire();
    void outbox.submit(notify('r1'), 5_000);
    void outbox.submit(notify('r2', { table_id: 9 }), 5_000);
    outbox.settle(reply('r1', 0, { event_id: 'E1' }));
    void outbox.submit(notify('r3'), 5_000);
    setOnline(false);
    outbox.connectionLost();
    setOnline(true);
    sent.length = 0;
    outbox.sendUnanswered();
    expect(sent).toEqual([notify('r2', { table_id: 9 }), notify('r3')]);
  });
});

describe('when the edge answers 503 (event log unavailable)', () => {
  it('sends the same req_id again after a backoff and resolves when it is recorded', async () => {
    const { outbox, sent } = wire();
    const result = outbox.submit(notify('r1'), 5_000);
    outbox.settle(reply('r1', 503));
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50); // attempt 0: half of the 100 ms ceiling with random 0.5
    expect(sent.map((frame) => frame.req_id)).toEqual(['r1', 'r1']);
    outbox.settle(reply('r1', 503));
    await vi.advanceTimersByTimeAsync(100); // attempt 1: half of 200 ms
    expect(sent).toHaveLength(3);
    outbox.settle(reply('r1', 0, { event_id: 'E1' }));
    await expect(result).resolves.toEqual({ event_id: 'E1', req_id: 'r1' });
  });

  it('does not send it again at login while it waits out its backoff', async () => {
    const { outbox, sent } = wire();
    void outbox.submit(notify('r1'), 5_000);
    outbox.settle(reply('r1', 503));
    outbox.connectionLost();
    outbox.sendUnanswered();
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(sent).toHaveLength(2);
  });

  it('gives up with TIMEOUT when the log stays unavailable past the deadline', async () => {
    const { outbox } = wire();
    const result = outbox.submit(notify('r1'), 1_000);
    const assertion = expect(result).rejects.toMatchObject({ kind: 'TIMEOUT', reqId: 'r1' });
    for (let i = 0; i < 20; i++) {
      outbox.settle(reply('r1', 503));
      await vi.advanceTimersByTimeAsync(100);
    }
    await assertion;
    expect(outbox.size).toBe(0);
  });
});

describe('when the edge refuses a notify', () => {
  it('rejects with the code and message and does not retry', async () => {
    const { outbox, sent } = wire();
    const result = outbox.submit(notify('r1'), 5_000);
    outbox.settle({ ...reply('r1', 404), msg: 'shop has no registered main device' });
    await expect(result).rejects.toMatchObject({
      kind: 'REFUSED',
      code: 404,
      msg: 'shop has no registered main device',
      reqId: 'r1',
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(1);
  });
});

describe('when no reply comes', () => {
  it('rejects with TIMEOUT at the deadline, saying the outcome is unknown', async () => {
    const { outbox } = wire();
    const result = outbox.submit(notify('r1'), 2_000);
    const assertion = expect(result).rejects.toThrow(/may or may not be recorded/);
    await vi.advanceTimersByTimeAsync(2_000);
    await assertion;
  });

  it('waits forever with an infinite timeout', async () => {
    const { outbox } = wire();
    void outbox.submit(notify('r1'), Number.POSITIVE_INFINITY);
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    expect(outbox.size).toBe(1);
  });
});

describe('when a reply matches no pending notify', () => {
  it('says so, so the client can log it', () => {
    const { outbox } = wire();
    expect(outbox.settle(reply('unknown', 0, { event_id: 'E1' }))).toBe(false);
    expect(outbox.settle({ op: 'notify', code: 0, msg: 'ok', time: 't' })).toBe(false);
  });
});

describe('when the edge closes with 1009', () => {
  it('refuses the largest notify on the wire and keeps the others', async () => {
    const { outbox, sent } = wire();
    const small = outbox.submit(notify('small'), 5_000);
    const large = outbox.submit(notify('large', { data: { blob: 'x'.repeat(500) } }), 5_000);
    const assertion = expect(large).rejects.toMatchObject({ kind: 'FRAME_TOO_LARGE', reqId: 'large' });
    outbox.refuseLargestSent((reqId) =>
      Object.assign(new Error('too large'), { kind: 'FRAME_TOO_LARGE', reqId }),
    );
    await assertion;
    outbox.connectionLost();
    sent.length = 0;
    outbox.sendUnanswered();
    expect(sent.map((frame) => frame.req_id)).toEqual(['small']);
    outbox.settle(reply('small', 0, { event_id: 'E1' }));
    await expect(small).resolves.toMatchObject({ req_id: 'small' });
  });
});

describe('when the client closes', () => {
  it('rejects every pending notify with the reason', async () => {
    const { outbox } = wire();
    const a = outbox.submit(notify('a'), 5_000);
    const b = outbox.submit(notify('b'), 5_000);
    outbox.rejectAll(new Error('client closed'));
    await expect(a).rejects.toThrow('client closed');
    await expect(b).rejects.toThrow('client closed');
    expect(outbox.size).toBe(0);
  });
});

describe('when a handle is submitted', () => {
  it('resolves with the copy and the request on code 0', async () => {
    const { outbox, sent } = wire();
    const result = outbox.submit(handle('h1'), 5_000);
    expect(sent).toEqual([handle('h1')]);
    outbox.settle(reply('h1', 0, { id: 'E1.pos1', event_id: 'E1' }, 'handle'));
    await expect(result).resolves.toEqual({ ok: true, id: 'E1.pos1', event_id: 'E1' });
  });

  it('resolves with who was first on 409, without an error', async () => {
    const { outbox } = wire();
    const result = outbox.submit(handle('h1'), 5_000);
    const first = {
      handled_by: { kind: 'device', client_id: 'pos2' },
      handled_at: '2024-01-01T00:00:00Z',
      status: 1,
    };
    outbox.settle(reply('h1', 409, first, 'handle'));
    await expect(result).resolves.toEqual({ ok: false, ...first });
  });

  it('rejects any other code and does not retry it; a 503 is sent again, like a notify', async () => {
    const { outbox, sent } = wire();
    const forbidden = outbox.submit(handle('h1'), 5_000);
    void outbox.submit(handle('h2'), 5_000);
    outbox.settle({ ...reply('h1', 403, undefined, 'handle'), msg: 'only a main device handles messages' });
    outbox.settle(reply('h2', 503, undefined, 'handle'));
    await expect(forbidden).rejects.toMatchObject({ kind: 'REFUSED', code: 403, reqId: 'h1' });
    await vi.advanceTimersByTimeAsync(4_000);
    expect(sent.filter((frame) => frame.req_id === 'h1')).toHaveLength(1);
    const again = sent.filter((frame) => frame.req_id === 'h2');
    expect(again.length).toBeGreaterThan(1);
    expect(again.every((frame) => JSON.stringify(frame) === JSON.stringify(handle('h2')))).toBe(true);
  });

  it('sends it again after the next login, with the same req_id, in order with notifies', () => {
    const { outbox, sent, setOnline } = wire();
    void outbox.submit(notify('r1'), 5_000);
    void outbox.submit(handle('h1'), 5_000);
    outbox.connectionLost();
    sent.length = 0;
    setOnline(false);
    void outbox.submit(handle('h2', 'E2.pos1'), 5_000);
    setOnline(true);
    outbox.sendUnanswered();
    expect(sent).toEqual([notify('r1'), handle('h1'), handle('h2', 'E2.pos1')]);
    expect([outbox.count('notify'), outbox.count('handle')]).toEqual([1, 2]);
  });

  it('answers a req_id pending as a handle with the same promise, and refuses it for a notify', async () => {
    const { outbox, sent } = wire();
    const first = outbox.submit(handle('h1'), 5_000);
    expect(outbox.submit(handle('h1'), 5_000)).toBe(first);
    await expect(outbox.submit(notify('h1'), 5_000)).rejects.toMatchObject({ kind: 'REFUSED', reqId: 'h1' });
    expect(sent).toHaveLength(1);
  });

  it('rejects with TIMEOUT at the deadline, naming the handle', async () => {
    const { outbox } = wire();
    const result = outbox.submit(handle('h1'), 2_000);
    const assertion = expect(result).rejects.toThrow(/^handle h1: no reply within 2000 ms/);
    await vi.advanceTimersByTimeAsync(2_000);
    await assertion;
    expect(outbox.size).toBe(0);
  });
});
