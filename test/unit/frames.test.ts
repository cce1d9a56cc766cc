import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BrokerError, CLIENT_OPS, MAX_JSON_DEPTH, type ParsedFrame, parseClientFrame } from '#events';
import { notifyFrame } from '../support/frames';

const VALID_NOTIFY = notifyFrame('r1');

function refused(parsed: ParsedFrame) {
  if (parsed.ok) throw new Error(`expected a refusal, got a valid ${parsed.frame.op} frame`);
  return parsed;
}

/** The shape every parse must have, whatever the input: a valid frame, or an error to answer with. */
function expectWellFormed(parsed: ParsedFrame): void {
  if (parsed.ok) {
    expect(CLIENT_OPS).toContain(parsed.frame.op);
    // The edge serialises what it accepts; a frame that cannot be serialised must be refused here.
    expect(() => JSON.stringify(parsed.frame)).not.toThrow();
    return;
  }
  expect(parsed.error).toBeInstanceOf(BrokerError);
  expect(parsed.error.spec.ws).toBe(400);
  expect([...CLIENT_OPS, 'error']).toContain(parsed.op);
  if (parsed.reqId !== undefined) {
    expect(typeof parsed.reqId).toBe('string');
    expect(parsed.reqId.length).toBeLessThanOrEqual(128);
  }
}

describe('when a frame is well formed', () => {
  it('accepts each op with its fields', () => {
    for (const frame of [
      { op: 'login', token: 'x.y.z', shop_id: 's1', client_id: 'c1', type: 'main' },
      { op: 'login', token: 'x.y.z', type: '主' },
      { op: 'login', token: 'x.y.z', type: '副' },
      VALID_NOTIFY,
      { ...VALID_NOTIFY, table_id: 'T-7' },
      { op: 'notify', req_id: 'r2', table_id: 1, type: 'checkout' },
      { op: 'ack', id: `${'0'.repeat(26)}.cash-1` },
      { op: 'ack', ids: [`${'0'.repeat(26)}.cash-1`, `${'1'.repeat(26)}.cash-1`] },
      { op: 'ping' },
      { op: 'ping', req_id: 'p1' },
      { op: 'logout' },
    ]) {
      const parsed = parseClientFrame(JSON.stringify(frame));
      expect(parsed).toEqual({ ok: true, frame });
    }
  });
});

describe('when a frame is refused', () => {
  it('answers malformed JSON with op error and code 400', () => {
    const parsed = refused(parseClientFrame('{"op":"ping"'));
    expect(parsed.op).toBe('error');
    expect(parsed.error.code).toBe('MALFORMED_JSON');
  });

  it('answers a frame that is not an object with op error', () => {
    for (const text of ['[]', '"ping"', '42', 'null', 'true']) {
      const parsed = refused(parseClientFrame(text));
      expect(parsed.op).toBe('error');
      expect(parsed.error.code).toBe('INVALID_INPUT');
    }
  });

  it('answers an unknown or missing op with op error, keeping the req_id', () => {
    const unknown = refused(parseClientFrame('{"op":"subscribe","req_id":"q1"}'));
    expect(unknown).toMatchObject({ op: 'error', reqId: 'q1' });
    expect(unknown.error.code).toBe('UNKNOWN_OP');
    expect(unknown.error.message).toContain('subscribe');
    expect(refused(parseClientFrame('{"req_id":"q2"}')).error.message).toBe('missing op');
    // Inherited names are not ops.
    expect(refused(parseClientFrame('{"op":"__proto__"}')).error.code).toBe('UNKNOWN_OP');
    expect(refused(parseClientFrame('{"op":"toString"}')).error.code).toBe('UNKNOWN_OP');
  });

  it('answers invalid fields with the op, the req_id and what was wrong', () => {
    const parsed = refused(parseClientFrame(JSON.stringify({ ...VALID_NOTIFY, table_id: 1.5 })));
    expect(parsed).toMatchObject({ op: 'notify', reqId: 'r1' });
    expect(parsed.error.code).toBe('INVALID_INPUT');
    expect(parsed.error.message).toContain('/table_id');
  });

  it('refuses a notify without req_id, a wrong device type, and an ack without ids', () => {
    const { req_id: _, ...noReqId } = VALID_NOTIFY;
    expect(refused(parseClientFrame(JSON.stringify(noReqId))).error.message).toContain('/req_id');
    expect(refused(parseClientFrame('{"op":"login","token":"t","type":"boss"}')).op).toBe('login');
    expect(refused(parseClientFrame('{"op":"ack"}')).error.message).toBe('ack needs id, ids or handled');
    expect(refused(parseClientFrame('{"op":"ack","id":"not-a-message-id"}')).op).toBe('ack');
  });

  it('refuses identifiers outside the allowed alphabet', () => {
    expect(refused(parseClientFrame('{"op":"login","token":"t","shop_id":"a b"}')).op).toBe('login');
    expect(refused(parseClientFrame(`{"op":"login","token":"t","client_id":"${'c'.repeat(65)}"}`)).op).toBe(
      'login',
    );
  });

  it('refuses data nested deeper than JSON can safely be re-serialised', () => {
    const depth = 30_000;
    const text = `{"op":"notify","req_id":"r1","table_id":1,"type":"t","data":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const parsed = refused(parseClientFrame(text));
    expect(parsed.op).toBe('notify');
    expect(parsed.error.message).toContain('nested');
  });

  it('accepts data nested up to the limit and refuses one level more', () => {
    const nested = (levels: number) => `${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}`;
    const frame = (levels: number) =>
      `{"op":"notify","req_id":"r1","table_id":1,"type":"t","data":{"a":${nested(levels)}}}`;
    expect(parseClientFrame(frame(MAX_JSON_DEPTH)).ok).toBe(true);
    expect(refused(parseClientFrame(frame(MAX_JSON_DEPTH + 1))).op).toBe('notify');
  });

  it('drops a req_id it could not echo safely', () => {
    expect(refused(parseClientFrame('{"op":"nope","req_id":5}')).reqId).toBeUndefined();
    expect(refused(parseClientFrame(`{"op":"nope","req_id":"${'r'.repeat(129)}"}`)).reqId).toBeUndefined();
  });
});

describe('when the input is random', () => {
  it('never throws on random bytes, and answers with an error shape', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expectWellFormed(parseClientFrame(Buffer.from(bytes).toString('utf8')));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        expectWellFormed(parseClientFrame(JSON.stringify(value)));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on frames that are almost right', () => {
    const junk = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.jsonValue({ maxDepth: 3 }),
    );
    const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof(valid, junk);
    const almost = fc.record(
      {
        op: field(fc.constantFrom(...CLIENT_OPS, 'error', 'message', '')),
        req_id: field(fc.string({ minLength: 1, maxLength: 140 })),
        token: field(fc.string({ maxLength: 50 })),
        shop_id: field(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,70}$/)),
        client_id: field(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,70}$/)),
        type: field(fc.constantFrom('main', 'sub', '主', '副', 'add_dish')),
        table_id: field(fc.oneof(fc.integer(), fc.string({ maxLength: 140 }))),
        status: field(fc.integer()),
        data: field(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }))),
        user_info: field(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }))),
        id: field(fc.stringMatching(/^[0-9A-Z]{26}\.[a-z0-9-]{1,10}$/)),
        ids: field(fc.array(fc.stringMatching(/^[0-9A-Z]{26}\.[a-z0-9-]{1,10}$/), { maxLength: 3 })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(almost, (frame) => {
        expectWellFormed(parseClientFrame(JSON.stringify(frame)));
      }),
      { numRuns: 3000 },
    );
  });
});
