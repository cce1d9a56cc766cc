import { describe, expect, it } from 'vitest';
import { ACK_IDS_PER_FRAME } from '#client';
import { ERRORS, type ReplyFrame } from '#events';
import { ackFramesOf, notifyOutcomeOf, parseServerFrame } from '../../libs/client/src/wire';

const reply = (fields: Partial<ReplyFrame> & { code: number }): ReplyFrame => ({
  op: 'notify',
  msg: 'ok',
  time: '2024-01-01T00:00:00Z',
  ...fields,
});

describe('when the client reads a frame from the edge', () => {
  it('tells a message, a broadcast and a reply apart', () => {
    expect(parseServerFrame('{"op":"message","id":"m1","attempt":1}')?.kind).toBe('message');
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
  });
});

describe('when a notify is answered', () => {
  it('is recorded on code 0 with an event id', () => {
    expect(notifyOutcomeOf(reply({ code: 0, data: { event_id: 'E1' } }))).toEqual({
      kind: 'recorded',
      eventId: 'E1',
    });
  });

  it('is retried on 503, whose outcome is unknown', () => {
    expect(notifyOutcomeOf(reply({ code: 503, msg: ERRORS.LOG_UNAVAILABLE.message }))).toEqual({
      kind: 'retry',
    });
  });

  it('is refused on any other code, with the code and message', () => {
    expect(notifyOutcomeOf(reply({ code: 404, msg: 'shop has no registered main device' }))).toEqual({
      kind: 'refused',
      code: 404,
      msg: 'shop has no registered main device',
    });
  });

  it('is refused when a success carries no event id', () => {
    expect(notifyOutcomeOf(reply({ code: 0 })).kind).toBe('refused');
  });
});
