import { describe, expect, it } from 'vitest';
import { ACK_IDS_PER_FRAME } from '#client';
import { ERRORS, type ReplyFrame } from '#events';
import { ackFramesOf, handleOutcomeOf, notifyOutcomeOf, parseServerFrame } from '../../libs/client/src/wire';

const reply = (fields: Partial<ReplyFrame> & { code: number }): ReplyFrame => ({
  op: 'notify',
  msg: 'ok',
  time: '2024-01-01T00:00:00Z',
  ...fields,
});

describe('when the client reads a frame from the edge', () => {
  it('tells a message, a handled notice, a broadcast and a reply apart', () => {
    expect(parseServerFrame('{"op":"message","id":"m1","attempt":1}')?.kind).toBe('message');
    expect(parseServerFrame('{"op":"handled","id":"m1","event_id":"E1","status":2}')?.kind).toBe('handled');
    expect(parseServerFrame('{"op":"broadcast","event_id":"e1"}')?.kind).toBe('broadcast');
    expect(parseServerFrame('{"op":"pong","code":0,"msg":"ok","time":"t"}')?.kind).toBe('reply');
  });

  it('keeps the frame exactly as sent', () => {
    const text = '{"op":"message","id":"m1","table_id":7,"data":{"dish":"noodles"},"attempt":2}';
    expect(parseServerFrame(text)?.frame).toEqual(JSON.parse(text));
  });

  it('returns null for text that is not a protocol frame', () => {
    for (const text of [
      'nope',
      '[]',
      'null',
      '"x"',
      '{}',
      '{"op":5}',
      '{"op":"message"}',
      '{"op":"handled","event_id":"E1"}',
      '{"op":"login"}',
    ]) {
      expect(parseServerFrame(text), text).toBeNull();
    }
  });
});

describe('when acks are sent', () => {
  it('sends each id once, in order', () => {
    expect(ackFramesOf(['a', 'b', 'a', 'c'])).toEqual([{ op: 'ack', ids: ['a', 'b', 'c'] }]);
  });

  it('splits into frames the edge accepts', () => {
    const ids = Array.from({ length: ACK_IDS_PER_FRAME * 2 + 1 }, (_, i) => `m${i}`);
    const frames = ackFramesOf(ids);
    expect(frames.map((frame) => frame.ids?.length)).toEqual([ACK_IDS_PER_FRAME, ACK_IDS_PER_FRAME, 1]);
    expect(frames.flatMap((frame) => frame.ids)).toEqual(ids);
  });

  it('sends nothing for nothing', () => {
    expect(ackFramesOf([])).toEqual([]);
    expect(ackFramesOf([], [])).toEqual([]);
  });

  it('acks handled notices in `handled`, beside message ids in the same frame', () => {
    expect(ackFramesOf([], ['m1', 'm1'])).toEqual([{ op: 'ack', handled: ['m1'] }]);
    expect(ackFramesOf(['m2'], ['m1'])).toEqual([{ op: 'ack', ids: ['m2'], handled: ['m1'] }]);
  });

  it('splits notices into frames the edge accepts', () => {
    const notices = Array.from({ length: ACK_IDS_PER_FRAME + 1 }, (_, i) => `m${i}`);
    const frames = ackFramesOf(['a'], notices);
    expect(frames).toHaveLength(2);
    expect(frames[1]).toEqual({ op: 'ack', handled: [`m${ACK_IDS_PER_FRAME}`] });
    expect(frames.flatMap((frame) => frame.handled)).toEqual(notices);
    expect(frames.flatMap((frame) => frame.ids ?? [])).toEqual(['a']);
  });
});

describe('when a notify is answered', () => {
  it('is recorded on code 0 with an event id', () => {
    expect(notifyOutcomeOf(reply({ code: 0, data: { event_id: 'E1' } }), 'r1')).toEqual({
      kind: 'done',
      value: { event_id: 'E1', req_id: 'r1' },
    });
  });

  it('is retried on 503, whose outcome is unknown', () => {
    expect(notifyOutcomeOf(reply({ code: 503, msg: ERRORS.LOG_UNAVAILABLE.message }), 'r1')).toEqual({
      kind: 'retry',
    });
  });

  it('is refused on any other code, with the code and message', () => {
    expect(notifyOutcomeOf(reply({ code: 404, msg: 'shop has no registered main device' }), 'r1')).toEqual({
      kind: 'refused',
      code: 404,
      msg: 'shop has no registered main device',
    });
  });

  it('is refused when a success carries no event id', () => {
    expect(notifyOutcomeOf(reply({ code: 0 }), 'r1').kind).toBe('refused');
  });
});

describe('when a handle is answered', () => {
  const first = {
    handled_by: { kind: 'device', client_id: 'pos2' },
    handled_at: '2024-01-01T00:00:00.000Z',
    status: 1,
  };

  it('is done on code 0, with the copy and the request', () => {
    expect(
      handleOutcomeOf(reply({ op: 'handle', code: 0, data: { id: 'E1.pos1', event_id: 'E1' } }), 'E1.pos1'),
    ).toEqual({ kind: 'done', value: { ok: true, id: 'E1.pos1', event_id: 'E1' } });
  });

  it('is done on 409, saying who handled it first, when and with what status', () => {
    expect(handleOutcomeOf(reply({ op: 'handle', code: 409, data: first }), 'E1.pos1')).toEqual({
      kind: 'done',
      value: { ok: false, ...first },
    });
    const byApi = { ...first, handled_by: { kind: 'api' } };
    expect(handleOutcomeOf(reply({ op: 'handle', code: 409, data: byApi }), 'E1.pos1')).toMatchObject({
      value: { ok: false, handled_by: { kind: 'api' } },
    });
  });

  it('is refused on 409 without who handled it', () => {
    expect(handleOutcomeOf(reply({ op: 'handle', code: 409, msg: 'conflict' }), 'E1.pos1')).toEqual({
      kind: 'refused',
      code: 409,
      msg: 'conflict',
    });
    const partial = { ...first, handled_at: undefined };
    expect(handleOutcomeOf(reply({ op: 'handle', code: 409, data: partial }), 'E1.pos1').kind).toBe(
      'refused',
    );
  });

  it('is retried on 503, like a notify: handling again is safe', () => {
    expect(handleOutcomeOf(reply({ op: 'handle', code: 503, msg: 'unavailable' }), 'E1.pos1')).toEqual({
      kind: 'retry',
    });
  });

  it('is refused on any other code', () => {
    for (const code of [400, 403, 404, 429]) {
      expect(handleOutcomeOf(reply({ op: 'handle', code, msg: 'no' }), 'E1.pos1')).toEqual({
        kind: 'refused',
        code,
        msg: 'no',
      });
    }
  });

  it('is refused when a success carries no event id', () => {
    expect(handleOutcomeOf(reply({ op: 'handle', code: 0, data: { id: 'E1.pos1' } }), 'E1.pos1').kind).toBe(
      'refused',
    );
  });
});
