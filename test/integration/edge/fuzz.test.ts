// SPEC §3: no input, however malformed, may crash a process or affect another connection. A few hundred random
// frames (bytes, JSON, frames that are almost right) go to a live edge over one logged-in socket.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_OPS } from '#events';
import { notifyFrame, shopEvents, waitFor } from '#test-support';
import { edgeWorld, loggedIn, registered } from './fixture';

const FRAMES = 400;

beforeAll(async () => {
  // A rate limit this test does not reach: it is about content, limits.test.ts is about rates.
});
const world = edgeWorld({ EDGE_RATE_PER_S: '100000', EDGE_RATE_BURST: '100000' });

/** Random frames, as text or binary; logout is left out, since it ends the socket by design. */
function randomFrames(seed: number): Array<string | Buffer> {
  const ops = CLIENT_OPS.filter((op) => op !== 'logout');
  const junk = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof(valid, junk, fc.jsonValue({ maxDepth: 3 }));
  const almost = fc.record(
    {
      op: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...ops) },
        field(fc.constantFrom('error', 'message')),
      ),
      req_id: field(fc.string({ minLength: 1, maxLength: 140 })),
      token: field(fc.string({ maxLength: 60 })),
      table_id: field(fc.oneof(fc.integer(), fc.string({ maxLength: 140 }))),
      type: field(fc.constantFrom('add_dish', 'checkout', '主', '副')),
      status: field(fc.integer()),
      data: field(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 }))),
      user_info: field(fc.object({ maxDepth: 2 })),
      id: field(fc.stringMatching(/^[0-9A-Z]{26}\.[a-v]{1,8}$/)), // never w1's own: every ack is refused
      ids: field(fc.array(fc.string(), { maxLength: 3 })),
    },
    { requiredKeys: ['op'] },
  );
  // Valid notifies with random content: the append path meets odd strings, keys and numbers.
  const notify = fc.record({
    op: fc.constant('notify'),
    req_id: fc.string({ minLength: 1, maxLength: 128 }),
    table_id: fc.oneof(fc.integer(), fc.string({ maxLength: 128 })),
    type: fc.string({ minLength: 1, maxLength: 64 }),
    status: fc.integer({ min: -2147483648, max: 2147483647 }),
    data: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })),
    user_info: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })),
  });
  const frame = fc.oneof(
    { weight: 3, arbitrary: almost.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: notify.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
  );
  return fc.sample(frame, { numRuns: FRAMES, seed });
}

describe('when a connection sends random frames', () => {
  it('answers each with a well-formed frame, and the edge and other connections carry on', async () => {
    const seed = Date.now() % 2 ** 31;
    const fuzzer = await registered(world.ctx, 'fuzz', 'w1', 'sub');
    const bystander = await registered(world.ctx, 'fuzz', 'w2', 'sub');
    await registered(world.ctx, 'fuzz', 'm1', 'main');
    const socket = await loggedIn(world.url, fuzzer.token);
    const other = await loggedIn(world.url, bystander.token);

    for (const frame of randomFrames(seed)) {
      if (typeof frame === 'string') socket.ws.send(frame);
      else socket.ws.send(frame, { binary: true });
    }
    // Appends are answered in the order Redis ran them: once this notify is answered, so is every earlier one.
    socket.send(notifyFrame('after-the-storm'));
    const last = await socket
      .next((f) => f.req_id === 'after-the-storm', 15_000)
      .catch((err: Error) => {
        throw new Error(`seed ${seed}: ${err.message}`);
      });
    expect(last).toMatchObject({ op: 'notify', code: 0 });
    // One answer per frame (none is a valid ack, the only frame answered with silence), plus login and barrier.
    await waitFor(() => socket.frames.length === FRAMES + 2, {
      what: `seed ${seed}: an answer to every frame`,
    });

    for (const reply of socket.frames) {
      expect(typeof reply.op, `seed ${seed}: ${JSON.stringify(reply)}`).toBe('string');
      expect(typeof reply.code).toBe('number');
      expect(Number.isNaN(Date.parse(String(reply.time)))).toBe(false);
      expect(reply.code === 500, `seed ${seed}: internal error for ${JSON.stringify(reply)}`).toBe(false);
    }
    // Every event the storm appended (valid notifies are accepted) passes the catalogue.
    await shopEvents(world.ctx, 'fuzz');

    other.send(notifyFrame('bystander'));
    expect(await other.next((f) => f.op === 'notify')).toMatchObject({ code: 0, req_id: 'bystander' });
    expect(world.edge.connectionCount()).toBe(2);
    expect(await (await fetch(`http://127.0.0.1:${world.edge.port}/readyz`)).status).toBe(200);
    socket.ws.close();
    other.ws.close();
  });
});
