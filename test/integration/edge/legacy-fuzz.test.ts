// SPEC §3 and §9.1: no input on the original protocol's path, however malformed, may crash the edge or affect
// another connection, and every answer is the original's: an echo of what was sent or its error shape. A few
// hundred random frames (bytes, JSON, frames that are almost the original's) go to a logged-in legacy sub.
import { request } from 'node:https';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import { parseLegacyFrame } from '#events';
import {
  type Certificates,
  type LegacyDevice,
  makeCertificates,
  openLegacy,
  registerDevice,
  shopEvents,
  waitFor,
} from '#test-support';
import { type EdgeWorld, startEdgeWorld } from './fixture';

const FRAMES = 400;
const SHOP = 'fz';

let certs: Certificates;
let world: EdgeWorld;
let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;

beforeAll(async () => {
  certs = makeCertificates();
  certs.makeCa('chain-ca');
  certs.makeSigned('server', 'chain-ca', { isServer: true });
  certs.makeSigned('device', 'chain-ca');
  world = await startEdgeWorld({
    EDGE_TLS_CERT: certs.file('server.crt'),
    EDGE_TLS_KEY: certs.file('server.key'),
    EDGE_LEGACY_CA: certs.file('chain-ca.crt'),
    // A rate limit this test does not reach: it is about content, limits.test.ts is about rates.
    EDGE_RATE_PER_S: '100000',
    EDGE_RATE_BURST: '100000',
  });
  dispatcher = await startDispatcher(world.ctx.config, { log: world.ctx.log, healthServer: false });
});
afterAll(async () => {
  await dispatcher?.stop();
  await world?.stop();
  certs?.cleanup();
});

/** Random frames, as text or binary; logout is left out, since it ends the socket by design. */
function randomFrames(seed: number): Array<string | Buffer> {
  const junk = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  const field = <T>(valid: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 3, arbitrary: valid }, junk, fc.jsonValue({ maxDepth: 3 }));
  const almost = fc.record(
    {
      op: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('notify', 'login') },
        field(fc.constantFrom('ping', 'rawMsg', 'success')),
      ),
      shop_id: field(fc.constantFrom(SHOP, 7, 'other')),
      client_id: field(fc.constantFrom('pad-f', 'pos-f', 3)),
      from_client_id: field(fc.constantFrom('pad-f', 'pos-f')),
      from_client_type: field(fc.constantFrom('副', '主', 'sub', 'main')),
      type: field(fc.constantFrom('add_dish', 'checkout', '主', '副')),
      table_id: field(fc.oneof(fc.integer(), fc.string({ maxLength: 140 }))),
      status: field(fc.oneof(fc.integer(), fc.stringMatching(/^-?\d{1,12}$/))),
      data: field(fc.oneof(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), fc.constant([]))),
      user_info: field(fc.object({ maxDepth: 2 })),
    },
    { requiredKeys: ['op'] },
  );
  // The original's notifies with random content: the append path meets odd strings, keys and numbers.
  const notify = fc.record({
    op: fc.constant('notify'),
    shop_id: fc.constant(SHOP),
    table_id: fc.oneof(fc.integer(), fc.string({ maxLength: 128 })),
    type: fc.string({ minLength: 1, maxLength: 64 }),
    data: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })),
    user_info: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })),
    from_client_id: fc.constant('pad-f'),
    from_client_type: fc.constant('副'),
    status: fc.integer({ min: -2147483648, max: 2147483647 }),
  });
  const admin = fc
    .tuple(fc.constantFrom('reload', 'get_connections', 'send_messages'), fc.string({ maxLength: 20 }))
    .map(([op, rest]) => `from_admin=1&op=${op}&${rest}`);
  const frame = fc.oneof(
    { weight: 3, arbitrary: almost.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: notify.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: admin },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
  );
  return fc
    .sample(frame, { numRuns: FRAMES * 2, seed })
    .filter((f) => typeof f !== 'string' || !isLogout(f))
    .slice(0, FRAMES);
}

function isLogout(text: string): boolean {
  const parsed = parseLegacyFrame(text);
  return parsed.kind === 'frame' && parsed.frame.op === 'logout';
}

/** What the edge owes a frame from the logged-in sub pad-f: an answer, or (an accepted notify) an event. */
function owed(frame: string | Buffer): 'answer' | 'event' {
  if (typeof frame !== 'string') return 'answer';
  const parsed = parseLegacyFrame(frame);
  if (parsed.kind !== 'frame' || parsed.frame.op !== 'notify') return 'answer'; // an echo, an error, a 2nd login
  const { shopId, fromClientId, fromType } = parsed.frame;
  const isOwn = shopId === SHOP && fromClientId === 'pad-f' && (fromType === undefined || fromType === 'sub');
  return isOwn ? 'event' : 'answer';
}

/** The edge's /readyz status, over https with the chain's CA. */
function readyz(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: world.edge.port, path: '/readyz', ca: certs.pem('chain-ca.crt') },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Text as it crossed the wire: ws sends a string as UTF-8, lone surrogates as U+FFFD. */
const onTheWire = (text: string) => Buffer.from(text).toString();

describe('when a legacy connection sends random frames', () => {
  it("answers each in the original's way, and the edge and other connections carry on", async () => {
    const seed = Date.now() % 2 ** 31;
    const context = `seed ${seed}`;
    for (const [client, type] of [
      ['pad-f', 'sub'],
      ['pad-g', 'sub'],
      ['pos-f', 'main'],
    ] as const)
      await registerDevice(world.ctx, SHOP, client, type, { legacy: true });
    const url = `wss://127.0.0.1:${world.edge.port}/legacy`;
    const options = certs.clientOptions('device', 'chain-ca');
    const login = async (client: string, type: string): Promise<LegacyDevice> => {
      const socket = await openLegacy(url, options);
      socket.send(JSON.stringify({ op: 'login', shop_id: SHOP, client_id: client, type }));
      await waitFor(() => world.ctx.redis.hget(world.ctx.keys.presence(SHOP), client), {
        what: `${client} in`,
      });
      return socket;
    };
    const fuzzer = await login('pad-f', '副');
    const bystander = await login('pad-g', '副');
    const main = await login('pos-f', '主');

    const frames = randomFrames(seed);
    for (const frame of frames) {
      if (typeof frame === 'string') fuzzer.ws.send(frame);
      else fuzzer.ws.send(frame, { binary: true });
    }
    const answers = frames.filter((f) => owed(f) === 'answer').length;
    const events = frames.length - answers;
    expect(events, `${context}: some notifies are the original's and accepted`).toBeGreaterThan(0);
    await waitFor(() => fuzzer.texts.length >= answers, { what: `${context}: ${answers} answers` });
    await waitFor(async () => (await shopEvents(world.ctx, SHOP, 'NotifyRequested')).length === events, {
      what: `${context}: ${events} notifies recorded`,
    });
    await waitFor(() => main.texts.length === events, { what: `${context}: ${events} pushes to the main` });

    const sent = new Set(frames.filter((f): f is string => typeof f === 'string').map(onTheWire));
    for (const text of fuzzer.texts) {
      if (sent.has(text)) continue; // an echo
      const answer = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(answer), `${context}: ${text}`).toEqual(['code', 'msg', 'time', 'data']);
      expect(answer).toMatchObject({ code: 1, data: [] });
      expect(answer.time).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      expect(answer.msg, `${context}: internal error for ${text}`).not.toBe('internal error');
    }
    for (const text of main.texts)
      expect(Object.keys(JSON.parse(text) as object)).toEqual(['id', 'status', 'table_id', 'type', 'title']);
    expect(fuzzer.texts).toHaveLength(answers);

    bystander.send('still here');
    expect(await bystander.next()).toBe('still here');
    expect(world.edge.connectionCount()).toBe(3);
    expect(await readyz()).toBe(200);
    for (const socket of [fuzzer, bystander, main]) socket.ws.close();
  });
});
