// SPEC §9.1: devices of the original system, unchanged, over mutual TLS with certificates of the chain's own CA
// (made here by openssl as the original write-up made them: MD5 signatures by `openssl ca`, 1,024-bit keys, taken
// out of a .p12). They send the original's frames byte for byte and get the original's pushes and errors; what
// they do becomes the same events as v1, side by side with v1 devices.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startDispatcher } from '#dispatcher';
import type { EventOf } from '#events';
import { start as startPersister } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import {
  type Certificates,
  type LegacyDevice,
  makeCertificates,
  openLegacy,
  openRaw,
  refusedUpgrade,
  registerDevice,
  shopEvents,
  waitFor,
} from '#test-support';
import { runBroker } from '../ops/harness';
import { type EdgeWorld, loggedIn, startEdgeWorld } from './fixture';

const LEGACY_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

let certs: Certificates;
let world: EdgeWorld;
let dispatcher: Awaited<ReturnType<typeof startDispatcher>>;
let persister: Awaited<ReturnType<typeof startPersister>>;
let pool: Pool;
let legacyUrl: string;
let v1Url: string;

beforeAll(async () => {
  certs = makeCertificates();
  certs.makeCa('weiwoju-ca'); // the chain's CA, which signed its devices' certificates
  certs.makeSigned('server', 'weiwoju-ca', { isServer: true });
  certs.makeDeviceAsTheWriteUp('device', 'weiwoju-ca');
  certs.makeDeviceAsTheWriteUp('expired-device', 'weiwoju-ca', { expired: true });
  certs.makeCa('v1-ca'); // EDGE_TLS_CA: mutual TLS on /ws as well
  certs.makeSigned('v1-device', 'v1-ca');
  certs.makeCa('rogue-ca');
  certs.makeSigned('rogue-device', 'rogue-ca');
  certs.makeDeviceAsTheWriteUp('rogue-md5-device', 'rogue-ca');
  world = await startEdgeWorld({
    EDGE_TLS_CERT: certs.file('server.crt'),
    EDGE_TLS_KEY: certs.file('server.key'),
    EDGE_TLS_CA: certs.file('v1-ca.crt'),
    EDGE_LEGACY_CA: certs.file('weiwoju-ca.crt'),
    EDGE_LEGACY_ALLOW_MD5: 'true',
  });
  dispatcher = await startDispatcher(world.ctx.config, { log: world.ctx.log, healthServer: false });
  persister = await startPersister(world.ctx.config, { log: world.ctx.log, healthServer: false });
  pool = await connectPostgres(world.ctx.databaseUrl, world.ctx.log);
  legacyUrl = `wss://127.0.0.1:${world.edge.port}/legacy`;
  v1Url = `wss://127.0.0.1:${world.edge.port}/ws`;
});
afterAll(async () => {
  await pool?.end();
  await dispatcher?.stop();
  await persister?.stop();
  await world?.stop();
  certs?.cleanup();
});

const device = () => openLegacy(legacyUrl, certs.clientOptions('device', 'weiwoju-ca'));
const v1Device = (token: string) =>
  loggedIn(v1Url, token, {}, certs.clientOptions('v1-device', 'weiwoju-ca'));

const loginsOf = async (shopId: string, clientId: string) =>
  (await shopEvents(world.ctx, shopId, 'DeviceLoggedIn')).filter((e) => e.data.client_id === clientId).length;

/** Logs a device in with the original's login frame, which gets no reply: done once its login is recorded. */
async function login(frame: string, shopId: string, clientId: string): Promise<LegacyDevice> {
  const before = await loginsOf(shopId, clientId);
  const socket = await device();
  socket.send(frame);
  await waitFor(async () => (await loginsOf(shopId, clientId)) > before, { what: `${clientId} logged in` });
  return socket;
}

const notifies = async (shopId: string) => shopEvents(world.ctx, shopId, 'NotifyRequested');
const deliveries = async (shopId: string) => shopEvents(world.ctx, shopId, 'MessageDelivered');

describe('when a legacy sub notifies a shop with legacy mains', () => {
  it('stores one message per main, pushes it in the original shape, and records the write as the delivery', async () => {
    await registerDevice(world.ctx, '123', 'pos-1', 'main', { legacy: true });
    await registerDevice(world.ctx, '123', 'pos-2', 'main', { legacy: true });
    await registerDevice(world.ctx, '123', 'pad-1', 'sub', { legacy: true });
    // The original's ids were integers as often as not.
    const main = await login('{"op":"login","shop_id":123,"client_id":"pos-1","type":"主"}', '123', 'pos-1');
    const sub = await login('{"op":"login","shop_id":"123","client_id":"pad-1","type":"副"}', '123', 'pad-1');

    sub.send(
      '{"op":"notify","shop_id":123,"table_id":12,"type":"add_dish","data":{"dish":"noodles","qty":2},' +
        '"user_info":{"name":"Li"},"from_client_id":"pad-1","from_client_type":"副","status":0}',
    );
    const pushed = await main.next();
    const [event] = await notifies('123');
    expect(event?.data).toMatchObject({
      from_client_id: 'pad-1',
      from_type: 'sub',
      audience: 'mains',
      recipients: ['pos-1', 'pos-2'],
      req_id: event?.id,
      table_id: 12,
      data: { dish: 'noodles', qty: 2 },
      user_info: { name: 'Li' },
    });
    expect(pushed).toBe(
      `{"id":"${event?.id}.pos-1","status":0,"table_id":12,"type":"add_dish","title":"桌id:12 add_dish"}`,
    );
    const [delivery] = await waitFor(() => deliveries('123').then((d) => (d.length > 0 ? d : null)));
    expect(delivery?.data).toMatchObject({
      client_id: 'pos-1',
      via: 'socket-write',
      ids: [`${event?.id}.pos-1`],
    });
    // pos-2 is offline: its copy waits in its inbox.
    expect(await world.ctx.redis.hexists(world.ctx.keys.inbox('123'), `${event?.id}.pos-2`)).toBe(1);

    await persister.whenCaughtUp();
    const rows = await rowsOf(event!);
    expect(rows).toEqual([
      { to_client_id: 'pos-1', state: 'delivered', delivered_via: 'socket-write' },
      { to_client_id: 'pos-2', state: 'pending', delivered_via: null },
    ]);
    // Its logins say which protocol the device speaks: operators see who has not moved to v1 yet.
    const logins = await shopEvents(world.ctx, '123', 'DeviceLoggedIn');
    expect(logins.map((e) => [e.data.client_id, e.data.legacy])).toEqual([
      ['pos-1', true],
      ['pad-1', true],
    ]);
    const presence = JSON.parse((await world.ctx.redis.hget(world.ctx.keys.presence('123'), 'pos-1'))!);
    expect(presence).toMatchObject({ client_id: 'pos-1', legacy: true });
    // The original answered a successful login and notify with nothing.
    expect(sub.texts).toEqual([]);
    expect(main.texts).toEqual([pushed]);
    main.ws.close();
    sub.ws.close();
  });

  it('gives a legacy main that logs in its undelivered backlog, oldest first, each write recorded', async () => {
    const sub = await login('{"op":"login","shop_id":123,"client_id":"pad-1","type":"副"}', '123', 'pad-1');
    for (const table of [21, 22, 23]) {
      sub.send(
        `{"op":"notify","shop_id":123,"table_id":${table},"type":"return_dish","data":[],"user_info":[],` +
          `"from_client_id":"pad-1","from_client_type":"副","status":"1"}`,
      );
    }
    await waitFor(async () => (await notifies('123')).length === 4, { what: 'three more notifies' });
    const pos2 = await login('{"op":"login","shop_id":123,"client_id":"pos-2","type":"主"}', '123', 'pos-2');
    const texts = [await pos2.next(), await pos2.next(), await pos2.next(), await pos2.next()];
    const pushes = texts.map((text) => JSON.parse(text) as { id: string; table_id: number; status: number });
    expect(pushes.map((p) => p.table_id)).toEqual([12, 21, 22, 23]);
    expect(pushes.map((p) => p.status)).toEqual([0, 1, 1, 1]);
    expect(texts[1]).toMatch(/"title":"桌id:21 return_dish"}$/);
    await waitFor(
      async () => (await world.ctx.redis.zcount(world.ctx.keys.inboxOrder('123'), '-inf', '+inf')) <= 3,
      {
        what: "pos-2's backlog recorded delivered",
      },
    );
    const written = (await deliveries('123')).filter((d) => d.data.client_id === 'pos-2');
    expect(written.flatMap((d) => d.data.ids)).toEqual(pushes.map((p) => p.id));
    expect(written.every((d) => d.data.via === 'socket-write')).toBe(true);
    sub.ws.close();
    pos2.ws.close();
  });
});

describe('when a legacy and a v1 main share a shop', () => {
  it('pushes the same notify to both, each in its own protocol, from a v1 sub and from a legacy sub', async () => {
    await registerDevice(world.ctx, 'mix', 'pos-old', 'main', { legacy: true });
    await registerDevice(world.ctx, 'mix', 'pad-old', 'sub', { legacy: true });
    const v1Main = await v1Device(await registerDevice(world.ctx, 'mix', 'pos-new', 'main'));
    expect((await shopEvents(world.ctx, 'mix', 'DeviceLoggedIn'))[0]?.data).not.toHaveProperty('legacy');
    const v1Sub = await v1Device(await registerDevice(world.ctx, 'mix', 'w-new', 'sub'));
    const legacyMain = await login(
      '{"op":"login","shop_id":"mix","client_id":"pos-old","type":"main"}',
      'mix',
      'pos-old',
    );
    const legacySub = await login(
      '{"op":"login","shop_id":"mix","client_id":"pad-old","type":"sub"}',
      'mix',
      'pad-old',
    );

    v1Sub.send({
      op: 'notify',
      req_id: 'v1-1',
      table_id: 'A3',
      type: 'discount',
      status: 2,
      data: { pct: 10 },
    });
    const eventId = ((await v1Sub.next((f) => f.op === 'notify')).data as { event_id: string }).event_id;
    const v1Message = await v1Main.next((f) => f.op === 'message');
    expect(v1Message).toMatchObject({
      id: `${eventId}.pos-new`,
      table_id: 'A3',
      type: 'discount',
      status: 2,
    });
    expect(await legacyMain.next()).toBe(
      `{"id":"${eventId}.pos-old","status":2,"table_id":"A3","type":"discount","title":"桌id:A3 discount"}`,
    );

    legacySub.send(
      '{"op":"notify","shop_id":"mix","table_id":"A4","type":"gift","data":{"dish":"tea"},"user_info":{},' +
        '"from_client_id":"pad-old","from_client_type":"副","status":0}',
    );
    const fromLegacy = await v1Main.next((f) => f.op === 'message');
    expect(fromLegacy).toMatchObject({
      table_id: 'A4',
      type: 'gift',
      from_client_id: 'pad-old',
      data: { dish: 'tea' },
    });
    const legacyEventId = String(fromLegacy.id).split('.')[0];
    expect(JSON.parse(await legacyMain.next())).toEqual({
      id: `${legacyEventId}.pos-old`,
      status: 0,
      table_id: 'A4',
      type: 'gift',
      title: '桌id:A4 gift',
    });

    v1Main.send({ op: 'ack', ids: [v1Message.id, fromLegacy.id] });
    await waitFor(async () => (await deliveries('mix')).length >= 3, { what: 'every delivery recorded' });
    const via = (await deliveries('mix')).map((d) => [d.data.client_id, d.data.via]);
    expect(via).toEqual(
      expect.arrayContaining([
        ['pos-new', 'ack'],
        ['pos-old', 'socket-write'],
      ]),
    );
    expect(via.filter(([client]) => client === 'pos-old')).toHaveLength(2);
    for (const socket of [v1Main, v1Sub, legacyMain, legacySub]) socket.ws.close();
  });

  it('tells a legacy main nothing when a v1 cashier handles the request, and handles its copy too (SPEC §10)', async () => {
    await registerDevice(world.ctx, 'mix-h', 'pos-old', 'main', { legacy: true });
    const v1Main = await v1Device(await registerDevice(world.ctx, 'mix-h', 'pos-new', 'main'));
    const v1Sub = await v1Device(await registerDevice(world.ctx, 'mix-h', 'w-new', 'sub'));
    const legacyMain = await login(
      '{"op":"login","shop_id":"mix-h","client_id":"pos-old","type":"main"}',
      'mix-h',
      'pos-old',
    );
    v1Sub.send({ op: 'notify', req_id: 'h-1', table_id: 9, type: 'return_dish', data: {} });
    const eventId = ((await v1Sub.next((f) => f.op === 'notify')).data as { event_id: string }).event_id;
    const mine = await v1Main.next((f) => f.op === 'message');
    expect(JSON.parse(await legacyMain.next())).toMatchObject({ id: `${eventId}.pos-old` });
    await waitFor(async () => (await deliveries('mix-h')).length >= 1, { what: 'the socket write recorded' });

    v1Main.send({ op: 'handle', id: mine.id, status: 5, req_id: 'h' });
    expect(await v1Main.next((f) => f.op === 'handle')).toMatchObject({ code: 0 });
    // The notice for the legacy copy is filed, pushed, and taken as received without a frame.
    await waitFor(async () => (await world.ctx.redis.hlen(world.ctx.keys.inbox('mix-h'))) === 0, {
      what: "the legacy main's notice cleared",
    });
    legacyMain.send('still here');
    expect(await legacyMain.next()).toBe('still here'); // nothing was written to it in between
    await waitFor(
      async () => {
        const { rows } = await pool.query('SELECT state, handled_by FROM messages WHERE event_id = $1', [
          eventId,
        ]);
        return rows.length === 2 && rows.every((r) => r.state === 'handled');
      },
      { what: 'both copies handled' },
    );
    for (const socket of [v1Main, v1Sub, legacyMain]) socket.ws.close();
  });

  it("broadcasts a main's notify to the shop's subs: the notify's fields without op to a legacy sub", async () => {
    const legacyMain = await login(
      '{"op":"login","shop_id":"mix","client_id":"pos-old","type":"主"}',
      'mix',
      'pos-old',
    );
    const legacySub = await login(
      '{"op":"login","shop_id":"mix","client_id":"pad-old","type":"副"}',
      'mix',
      'pad-old',
    );
    const token = await registerDevice(world.ctx, 'mix', 'w-2', 'sub');
    const v1Sub = await v1Device(token);
    legacyMain.send(
      '{"op":"notify","shop_id":"mix","table_id":5,"type":"checkout","data":{"total":"12/3"},"user_info":{"by":"Li"},' +
        '"from_client_id":"pos-old","from_client_type":"主","status":3}',
    );
    expect(await legacySub.next()).toBe(
      '{"shop_id":"mix","table_id":5,"type":"checkout","data":{"total":"12\\/3"},"user_info":{"by":"Li"},' +
        '"from_client_id":"pos-old","from_client_type":"主","status":3}',
    );
    expect(await v1Sub.next((f) => f.op === 'broadcast')).toMatchObject({
      from_client_id: 'pos-old',
      table_id: 5,
      type: 'checkout',
      data: { total: '12/3' },
    });
    expect(legacyMain.texts).toEqual([]);
    for (const socket of [legacyMain, legacySub, v1Sub]) socket.ws.close();
  });
});

describe('when a legacy device sends text that is not one of its frames', () => {
  it('echoes it back unchanged, logged in or not', async () => {
    const anonymous = await device();
    const texts = [
      'hello',
      '你好 说 world',
      '[1,2,3]',
      '{"op":"ping"}',
      '{"no":"op"}',
      '42',
      '{"op":"login"',
    ];
    for (const text of texts) anonymous.send(text);
    for (const text of texts) expect(await anonymous.next()).toBe(text);
    anonymous.ws.close();
  });

  it('never runs a from_admin command: it is echoed like any text', async () => {
    await registerDevice(world.ctx, 'admin', 'pad-a', 'sub', { legacy: true });
    const bystander = await login(
      '{"op":"login","shop_id":"admin","client_id":"pad-a","type":"副"}',
      'admin',
      'pad-a',
    );
    const attacker = await device();
    const commands = [
      'from_admin=1&op=get_connections',
      'from_admin=1&op=send_messages&content=hi&to_fds[]=1&to_fds[]=2',
      'from_admin=1&op=reload',
    ];
    for (const command of commands) attacker.send(command);
    attacker.send('done');
    // Frames are answered in order: the echoes, and nothing else, before the last one.
    expect(await attacker.next((t) => t === 'done')).toBe('done');
    expect(attacker.texts).toEqual([...commands, 'done']);
    bystander.send('still here');
    expect(await bystander.next()).toBe('still here');
    expect(bystander.texts).toEqual(['still here']);
    await waitFor(() => world.edge.connectionCount() === 2, { what: 'the edge holding both sockets alone' });
    attacker.ws.close();
    bystander.ws.close();
  });
});

describe('when a legacy device may not speak', () => {
  const refusal = (body: string) => {
    const answer = JSON.parse(body) as Record<string, unknown>;
    expect(answer).toMatchObject({ code: 1, data: [] });
    expect(answer.time).toMatch(LEGACY_TIME);
    return answer;
  };

  it('refuses the upgrade without a client certificate of the legacy CA, in the original shape', async () => {
    for (const client of [null, 'rogue-device', 'v1-device', 'rogue-md5-device', 'expired-device']) {
      const answer = await refusedUpgrade(legacyUrl, certs.clientOptions(client, 'weiwoju-ca'));
      expect(answer.status, String(client)).toBe(401);
      refusal(answer.body);
    }
    await waitFor(() => world.edge.connectionCount() === 0, { what: 'no socket left open' });
  });

  it('keeps /ws to certificates of EDGE_TLS_CA: a legacy device certificate does not open it', async () => {
    await expect(openRaw(v1Url, certs.clientOptions('device', 'weiwoju-ca'))).rejects.toThrow(/401/);
    const token = await registerDevice(world.ctx, 'v1-only', 'm1', 'main');
    (await v1Device(token)).ws.close();
  });

  it('answers a login of a device not registered, or not marked legacy, with an error and close 4401', async () => {
    await registerDevice(world.ctx, 'gate', 'pos-v1', 'main');
    await registerDevice(world.ctx, 'gate', 'pos-legacy', 'main', { legacy: true });
    const attempts = [
      '{"op":"login","shop_id":"gate","client_id":"nobody","type":"主"}',
      '{"op":"login","shop_id":"gate","client_id":"pos-v1","type":"主"}',
      '{"op":"login","shop_id":"gate","client_id":"pos-legacy","type":"副"}',
      '{"op":"login","shop_id":"gate","type":"主"}',
    ];
    for (const frame of attempts) {
      const socket = await device();
      socket.send(frame);
      refusal(await socket.next());
      expect((await socket.closed).code, frame).toBe(4401);
    }
    expect(await world.ctx.redis.hlen(world.ctx.keys.presence('gate'))).toBe(0);
    expect(await shopEvents(world.ctx, 'gate', 'DeviceLoggedIn')).toEqual([]);
  });

  it('answers frames it cannot take in the original shape and keeps the socket', async () => {
    await registerDevice(world.ctx, 'lonely', 'pad-l', 'sub', { legacy: true });
    const socket = await device();
    socket.send('{"op":"notify","shop_id":"lonely","table_id":1,"type":"add_dish","from_client_id":"pad-l"}');
    expect(refusal(await socket.next()).msg).toBe('login first');
    const before = await loginsOf('lonely', 'pad-l');
    socket.send('{"op":"login","shop_id":"lonely","client_id":"pad-l","type":"副"}');
    await waitFor(async () => (await loginsOf('lonely', 'pad-l')) > before, { what: 'pad-l logged in' });
    socket.send('{"op":"notify","shop_id":"lonely","table_id":1,"type":"add_dish","from_client_id":"pad-l"}');
    expect(refusal(await socket.next()).msg).toBe('店铺主设备未记录,请先联系商家完成主设备初始化');
    socket.send('{"op":"notify","shop_id":"lonely","table_id":1,"type":"add_dish","from_client_id":"pad-x"}');
    expect(refusal(await socket.next()).msg).toMatch(/from_client_id/);
    socket.send('{"op":"notify","shop_id":"other","table_id":1,"type":"add_dish","from_client_id":"pad-l"}');
    expect(refusal(await socket.next()).msg).toMatch(/shop_id/);
    socket.send(
      '{"op":"notify","shop_id":"lonely","table_id":1,"type":"add_dish","from_client_id":"pad-l","from_client_type":"主"}',
    );
    expect(refusal(await socket.next()).msg).toMatch(/from_client_type/);
    socket.send(
      '{"op":"notify","shop_id":"lonely","table_id":{"x":1},"type":"add_dish","from_client_id":"pad-l"}',
    );
    expect(refusal(await socket.next()).msg).toMatch(/table_id/);
    expect(await notifies('lonely')).toEqual([]);

    socket.send('{"op":"logout"}');
    expect((await socket.closed).code).toBe(1000);
    await waitFor(
      async () => (await shopEvents(world.ctx, 'lonely', 'ConnectionClosed'))[0]?.data.reason === 'logout',
      {
        what: 'the logout recorded',
      },
    );
  });
});

describe('when EDGE_LEGACY_ALLOW_MD5 is off (the default)', () => {
  let strict: EdgeWorld;
  beforeAll(async () => {
    certs.makeSigned('sha256-device', 'weiwoju-ca'); // re-issued from the same CA, as docs/migrating.md says
    strict = await startEdgeWorld({
      EDGE_TLS_CERT: certs.file('server.crt'),
      EDGE_TLS_KEY: certs.file('server.key'),
      EDGE_LEGACY_CA: certs.file('weiwoju-ca.crt'),
    });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it("refuses the write-up's MD5 device certificates, and takes the chain's SHA-256 ones", async () => {
    const url = `wss://127.0.0.1:${strict.edge.port}/legacy`;
    const answer = await refusedUpgrade(url, certs.clientOptions('device', 'weiwoju-ca'));
    expect(answer.status).toBe(401);
    const reissued = await openLegacy(url, certs.clientOptions('sha256-device', 'weiwoju-ca'));
    reissued.send('hello'); // the original's test echo: the upgrade went through
    expect(await reissued.next()).toBe('hello');
    reissued.ws.close();
  });
});

describe('when the log of legacy devices is audited', () => {
  it('folds to the rows the persister wrote: the legacy mark and socket-write deliveries included', async () => {
    await persister.whenCaughtUp();
    const run = await runBroker(world.ctx, ['audit']);
    expect(run.stdout).toMatch(/ 0 differences\n$/);
    expect(run.code).toBe(0);
    const devices = await pool.query(
      "SELECT client_id FROM devices WHERE shop_id = '123' AND legacy ORDER BY 1",
    );
    expect(devices.rows.map((r) => r.client_id)).toEqual(['pad-1', 'pos-1', 'pos-2']);
  });
});

async function rowsOf(event: EventOf<'NotifyRequested'>) {
  const result = await pool.query(
    'SELECT to_client_id, state, delivered_via FROM messages WHERE event_id = $1 ORDER BY to_client_id',
    [event.id],
  );
  return result.rows;
}
