// ◇ The original system's protocol (SPEC §9.1) as pure functions: which text is a frame, an error or an echo; the
// original's times, error shape, pushes and broadcasts, byte for byte.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BrokerError,
  LEGACY_NO_MAIN_DEVICE,
  legacyAnswer,
  legacyErrorFrame,
  legacyPushOf,
  legacyTime,
  messageFrameOf,
  parseLegacyFrame,
} from '#events';

const NOTIFY = {
  op: 'notify',
  shop_id: 12,
  table_id: 7,
  type: 'add_dish',
  data: { dish: 'noodles' },
  user_info: { name: 'Li' },
  from_client_id: 'pad-1',
  from_client_type: '副',
  status: 1,
};

describe('when a text is one of the original frames', () => {
  it('reads a login with ids as numbers or strings and the type in either spelling', () => {
    expect(parseLegacyFrame('{"op":"login","shop_id":12,"client_id":"pos-1","type":"主"}')).toEqual({
      kind: 'frame',
      frame: { op: 'login', shopId: '12', clientId: 'pos-1', type: 'main' },
    });
    expect(parseLegacyFrame('{"op":"login","shop_id":"s1","client_id":9,"type":"sub"}')).toEqual({
      kind: 'frame',
      frame: { op: 'login', shopId: 's1', clientId: '9', type: 'sub' },
    });
  });

  it("reads a notify's fields as the broker records them", () => {
    expect(parseLegacyFrame(JSON.stringify(NOTIFY))).toEqual({
      kind: 'frame',
      frame: {
        op: 'notify',
        shopId: '12',
        fromClientId: 'pad-1',
        fromType: 'sub',
        table_id: 7,
        type: 'add_dish',
        status: 1,
        data: { dish: 'noodles' },
        user_info: { name: 'Li' },
      },
    });
  });

  it("takes PHP's habits: a status as a numeric string, [] for an empty object, fields left out", () => {
    const parsed = parseLegacyFrame(
      '{"op":"notify","shop_id":"s","type":"checkout","from_client_id":"p","status":"-3","data":[],"user_info":null}',
    );
    expect(parsed).toMatchObject({
      kind: 'frame',
      frame: { status: -3, data: {}, user_info: {}, table_id: null, fromType: undefined },
    });
  });

  it('reads a logout', () => {
    expect(parseLegacyFrame('{"op":"logout"}')).toEqual({ kind: 'frame', frame: { op: 'logout' } });
  });
});

describe('when a known op has fields the broker cannot take', () => {
  it.each([
    ['a login without client_id', { op: 'login', shop_id: 1, type: '主' }],
    ['a login with an unknown type', { op: 'login', shop_id: 1, client_id: 'a', type: 'boss' }],
    ['an id with a space', { op: 'login', shop_id: 'a b', client_id: 'a', type: '主' }],
    ['a negative id', { ...NOTIFY, shop_id: -1 }],
    ['a table_id object', { ...NOTIFY, table_id: { a: 1 } }],
    ['a status out of 32 bits', { ...NOTIFY, status: '99999999999' }],
    ['a status that is not a number', { ...NOTIFY, status: 'one' }],
    ['data as a list', { ...NOTIFY, data: [1] }],
    ['a U+0000 in a string', { ...NOTIFY, user_info: { n: 'a\u0000b' } }],
    ['no type', { ...NOTIFY, type: undefined }],
  ])('refuses %s with an error to answer', (_name, frame) => {
    const parsed = parseLegacyFrame(JSON.stringify(frame));
    expect(parsed.kind).toBe('refused');
    if (parsed.kind === 'refused') expect(parsed.error).toBeInstanceOf(BrokerError);
  });
});

describe('when a text is not a JSON object with a known op', () => {
  it.each([
    'hello',
    '',
    '42',
    'null',
    '[1,2]',
    '{"op":"ping"}',
    '{"op":"success"}',
    '{"no":"op"}',
    '{"op":5}',
    '{"op":"login"',
  ])('echoes %j', (text) => {
    expect(parseLegacyFrame(text)).toEqual({ kind: 'echo', isAdminCommand: false });
  });

  it('flags a from_admin command, which the original ran and the broker only echoes', () => {
    expect(parseLegacyFrame('from_admin=1&op=reload')).toEqual({ kind: 'echo', isAdminCommand: true });
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          expect(['frame', 'refused', 'echo']).toContain(parseLegacyFrame(text).kind);
        },
      ),
    );
  });
});

describe("the original's answers", () => {
  it('tells time as the original did: Y-m-d H:i:s in PRC time (UTC+8)', () => {
    expect(legacyTime(Date.UTC(2024, 4, 1, 9, 31, 5, 999))).toBe('2024-05-01 17:31:05');
    expect(legacyTime(Date.UTC(2024, 11, 31, 20, 0, 0))).toBe('2025-01-01 04:00:00');
  });

  it('refuses in the shape {code:1, msg, time, data:[]}, Chinese unescaped', () => {
    expect(legacyErrorFrame(LEGACY_NO_MAIN_DEVICE, Date.UTC(2024, 4, 1, 1, 2, 3))).toBe(
      '{"code":1,"msg":"店铺主设备未记录,请先联系商家完成主设备初始化","time":"2024-05-01 09:02:03","data":[]}',
    );
    expect(legacyAnswer(0, 'ok', 0, { online: 1 })).toEqual({
      code: 0,
      msg: 'ok',
      time: '1970-01-01 08:00:00',
      data: { online: 1 },
    });
  });

  it('pushes a message to a main as {id, status, table_id, type, title}, slashes escaped as PHP did', () => {
    const frame = messageFrameOf(
      {
        id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1',
        shop_id: 's1',
        table_id: 'A/1',
        type: 'add_dish',
        status: 2,
        title: '桌id:A/1 add_dish',
        data: { x: 1 },
        user_info: {},
        from_client_id: 'pad-1',
        to_client_id: 'pos-1',
        created_at: '2024-05-01T09:31:00.000Z',
      },
      3,
    );
    expect(legacyPushOf(JSON.stringify(frame))).toEqual({
      text: '{"id":"01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1","status":2,"table_id":"A\\/1","type":"add_dish","title":"桌id:A\\/1 add_dish"}',
      messageId: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V.pos-1',
    });
  });

  it("gives a sub a broadcast as the notify's fields without op; the back office's has no sender", () => {
    const broadcast = {
      op: 'broadcast',
      event_id: '01HXA6Q8N4W7K2ZJ3M5P9R1T0V',
      shop_id: 's1',
      table_id: 3,
      type: 'checkout',
      status: 0,
      title: '桌id:3 checkout',
      data: { total: 12 },
      user_info: { by: 'Li' },
      from_client_id: 'pos-1',
      created_at: '2024-05-01T09:31:00.000Z',
    };
    expect(legacyPushOf(JSON.stringify(broadcast))).toEqual({
      text: '{"shop_id":"s1","table_id":3,"type":"checkout","data":{"total":12},"user_info":{"by":"Li"},"from_client_id":"pos-1","from_client_type":"主","status":0}',
      messageId: null,
    });
    const fromApi = legacyPushOf(JSON.stringify({ ...broadcast, from_client_id: null }));
    expect(JSON.parse(fromApi?.text ?? '')).toMatchObject({ from_client_id: null, from_client_type: null });
  });

  it('writes nothing for a frame the original protocol has no shape for', () => {
    expect(legacyPushOf('{"op":"handled","id":"x"}')).toBeNull();
    expect(legacyPushOf('not json')).toBeNull();
  });
});
