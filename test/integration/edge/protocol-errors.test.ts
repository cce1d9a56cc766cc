// SPEC §3's error list, row by row, against a live edge on real Redis.
import { describe, expect, it } from 'vitest';
import { notifyFrame, openRaw, shopEvents, waitFor } from '#test-support';
import { edgeWorld, loggedIn, registered } from './fixture';

const world = edgeWorld();

describe('when a frame is refused', () => {
  it('answers a frame before login with 401 and keeps the socket open', async () => {
    const socket = await openRaw(world.url);
    socket.send(notifyFrame('r1'));
    expect(await socket.next()).toMatchObject({ op: 'notify', code: 401, msg: 'login first', req_id: 'r1' });
    socket.send({ op: 'ack', id: `${'0'.repeat(26)}.x` });
    expect(await socket.next()).toMatchObject({ op: 'ack', code: 401 });
    socket.send({ op: 'ping', req_id: 'p1' });
    expect(await socket.next()).toMatchObject({ op: 'pong', code: 0, req_id: 'p1' });
    socket.ws.close();
  });

  it('answers malformed JSON with op error and code 400', async () => {
    const socket = await openRaw(world.url);
    socket.send('{"op":"login",');
    const reply = await socket.next();
    expect(reply).toMatchObject({ op: 'error', code: 400, msg: 'malformed JSON' });
    expect(Date.parse(String(reply.time))).not.toBeNaN();
    socket.ws.send(Buffer.from([1, 2, 3]));
    expect(await socket.next()).toMatchObject({ op: 'error', code: 400, msg: 'frames are JSON text' });
    socket.ws.close();
  });

  it('answers an unknown op with op error, code 400 and the req_id', async () => {
    const socket = await openRaw(world.url);
    socket.send({ op: 'subscribe', req_id: 'q1' });
    expect(await socket.next()).toMatchObject({ op: 'error', code: 400, req_id: 'q1' });
    socket.ws.close();
  });

  it('answers invalid fields with the op, code 400 and what was wrong', async () => {
    const { token } = await registered(world.ctx, 'fields', 'w1', 'sub');
    await registered(world.ctx, 'fields', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    socket.send(notifyFrame('r1', { table_id: { nested: true } }));
    const reply = await socket.next();
    expect(reply).toMatchObject({ op: 'notify', code: 400, req_id: 'r1' });
    expect(reply.msg).toContain('/table_id');
    socket.send(notifyFrame('r2', { status: 'one' }));
    expect(await socket.next()).toMatchObject({ op: 'notify', code: 400, req_id: 'r2' });
    expect(await shopEvents(world.ctx, 'fields', 'NotifyRequested')).toEqual([]);
    socket.ws.close();
  });
});

describe('when a token is not acceptable', () => {
  it('refuses a login naming another shop than the token with 401 and closes 4401', async () => {
    const { token } = await registered(world.ctx, 'shop-a', 'w1', 'sub');
    const socket = await openRaw(world.url);
    socket.send({ op: 'login', token, shop_id: 'shop-b', req_id: 'l1' });
    expect(await socket.next()).toMatchObject({ op: 'login', code: 401, req_id: 'l1' });
    expect((await socket.closed).code).toBe(4401);
    expect(await shopEvents(world.ctx, 'shop-a', 'DeviceLoggedIn')).toEqual([]);
  });

  it('refuses a login whose client_id or type differ from the token', async () => {
    const { token } = await registered(world.ctx, 'shop-c', 'm1', 'main');
    for (const extra of [{ client_id: 'm2' }, { type: 'sub' }, { type: '副' }]) {
      const socket = await openRaw(world.url);
      socket.send({ op: 'login', token, ...extra });
      expect(await socket.next()).toMatchObject({ op: 'login', code: 401 });
      expect((await socket.closed).code).toBe(4401);
    }
  });

  it('refuses an expired token with 401 and closes 4401', async () => {
    const { tokenId } = await registered(world.ctx, 'shop-e', 'w1', 'sub');
    const claims = { shop_id: 'shop-e', client_id: 'w1', type: 'sub' as const, token_id: tokenId };
    const expired = await world.tokens.mint(claims, Date.now() - 3_600_000, 1);
    const socket = await openRaw(world.url);
    socket.send({ op: 'login', token: expired });
    expect(await socket.next()).toMatchObject({ op: 'login', code: 401, msg: 'token expired' });
    expect((await socket.closed).code).toBe(4401);
  });

  it('refuses a forged or garbled token with 401 and closes 4401', async () => {
    const { token } = await registered(world.ctx, 'shop-f', 'w1', 'sub');
    const [header, payload] = token.split('.');
    for (const bad of ['not-a-jwt', `${header}.${payload}.c2lnbmF0dXJl`]) {
      const socket = await openRaw(world.url);
      socket.send({ op: 'login', token: bad });
      expect(await socket.next()).toMatchObject({ op: 'login', code: 401 });
      expect((await socket.closed).code).toBe(4401);
    }
  });

  it('accepts the legacy type spelling that matches the token', async () => {
    const { token } = await registered(world.ctx, 'shop-l', 'm1', 'main');
    const socket = await loggedIn(world.url, token, { shop_id: 'shop-l', client_id: 'm1', type: '主' });
    const [event] = await shopEvents(world.ctx, 'shop-l', 'DeviceLoggedIn');
    expect(event?.data).toMatchObject({ client_id: 'm1', type: 'main', conn_id: socket.connId });
    socket.ws.close();
  });
});

describe('when a device acks', () => {
  it('appends MessageDelivered and sends no reply', async () => {
    const sub = await registered(world.ctx, 'ack-1', 'w1', 'sub');
    const main = await registered(world.ctx, 'ack-1', 'm1', 'main');
    const waiter = await loggedIn(world.url, sub.token);
    const cashier = await loggedIn(world.url, main.token);
    waiter.send(notifyFrame('r1'));
    const { event_id } = (await waiter.next((f) => f.op === 'notify')).data as { event_id: string };
    // The append pushes it (notify-12.lua), with no dispatcher running.
    expect(await cashier.next()).toMatchObject({ op: 'message', id: `${event_id}.m1`, attempt: 1 });
    cashier.send({ op: 'ack', id: `${event_id}.m1`, req_id: 'a1' });
    const delivered = await waitFor(() =>
      shopEvents(world.ctx, 'ack-1', 'MessageDelivered').then((events) => events[0]),
    );
    expect(delivered?.data).toMatchObject({ client_id: 'm1', ids: [`${event_id}.m1`] });
    cashier.send({ op: 'ping' });
    expect(await cashier.next()).toMatchObject({ op: 'pong' }); // no ack reply came before it
    waiter.ws.close();
    cashier.ws.close();
  });

  it("refuses an ack of another device's message with 403 and keeps the socket open", async () => {
    const sub = await registered(world.ctx, 'ack-2', 'w1', 'sub');
    await registered(world.ctx, 'ack-2', 'm1', 'main');
    const other = await registered(world.ctx, 'ack-2', 'm2', 'main');
    const waiter = await loggedIn(world.url, sub.token);
    const intruder = await loggedIn(world.url, other.token);
    waiter.send(notifyFrame('r1'));
    const { event_id } = (await waiter.next((f) => f.op === 'notify')).data as { event_id: string };
    expect(await intruder.next()).toMatchObject({ op: 'message', id: `${event_id}.m2` });
    intruder.send({ op: 'ack', ids: [`${event_id}.m2`, `${event_id}.m1`], req_id: 'a1' });
    expect(await intruder.next()).toMatchObject({ op: 'ack', code: 403, req_id: 'a1' });
    expect(await world.ctx.redis.hexists(world.ctx.keys.inbox('ack-2'), `${event_id}.m1`)).toBe(1);
    expect(await shopEvents(world.ctx, 'ack-2', 'MessageDelivered')).toEqual([]);
    intruder.send({ op: 'ping' });
    expect(await intruder.next()).toMatchObject({ op: 'pong' });
    waiter.ws.close();
    intruder.ws.close();
  });
});

describe('when a sub device notifies', () => {
  it('answers 404 when the shop has no registered main device, and records nothing', async () => {
    const { token } = await registered(world.ctx, 'lonely', 'w1', 'sub');
    const socket = await loggedIn(world.url, token);
    socket.send(notifyFrame('r1'));
    expect(await socket.next()).toMatchObject({
      op: 'notify',
      code: 404,
      msg: 'shop has no registered main device',
      req_id: 'r1',
    });
    expect(await shopEvents(world.ctx, 'lonely', 'NotifyRequested')).toEqual([]);
    socket.ws.close();
  });

  it('answers a repeated req_id with the same event id and appends one event', async () => {
    const sub = await registered(world.ctx, 'dup', 'w1', 'sub');
    await registered(world.ctx, 'dup', 'm1', 'main');
    const first = await loggedIn(world.url, sub.token);
    first.send(notifyFrame('same'));
    const a = await first.next((f) => f.op === 'notify');
    first.send(notifyFrame('same', { table_id: 8 }));
    const b = await first.next((f) => f.op === 'notify');
    first.ws.close();
    // From a new connection (the device reconnected) the req_id is still known.
    const second = await loggedIn(world.url, sub.token);
    second.send(notifyFrame('same'));
    const c = await second.next((f) => f.op === 'notify');
    expect([a.code, b.code, c.code]).toEqual([0, 0, 0]);
    expect(b.data).toEqual(a.data);
    expect(c.data).toEqual(a.data);
    const notifies = await shopEvents(world.ctx, 'dup', 'NotifyRequested');
    expect(notifies.map((e) => e.id)).toEqual([(a.data as { event_id: string }).event_id]);
    // One hash of records per shop (no key per notify), kept 24 h past the shop's last notify.
    expect(await world.ctx.redis.exists(world.ctx.keys.dedup('dup', 'w1', 'same'))).toBe(0);
    const ttl = await world.ctx.redis.ttl(world.ctx.keys.requests('dup'));
    expect(ttl).toBeGreaterThan(24 * 3600 - 60);
    second.ws.close();
  });

  it('records data, user_info and table_id exactly as sent, whatever req_id it carries', async () => {
    const sub = await registered(world.ctx, 'exact', '__recipients__', 'sub');
    await registered(world.ctx, 'exact', 'm1', 'main');
    const socket = await loggedIn(world.url, sub.token);
    const data = { dish: '牛肉面', note: '"__recipients__"', nested: { qty: 2, tags: ['hot', null] } };
    socket.send(notifyFrame('__recipients__', { table_id: 'T-7', data, user_info: { id: 9 } }));
    expect(await socket.next()).toMatchObject({ op: 'notify', code: 0 });
    const [event] = await shopEvents(world.ctx, 'exact', 'NotifyRequested');
    expect(event?.data).toMatchObject({
      req_id: '__recipients__',
      from_client_id: '__recipients__',
      recipients: ['m1'],
      table_id: 'T-7',
      data,
      user_info: { id: 9 },
    });
    socket.ws.close();
  });
});

describe('when a device pings or logs out', () => {
  it('answers ping with pong, and logout with ConnectionClosed and close 1000', async () => {
    const { token } = await registered(world.ctx, 'bye', 'w1', 'sub');
    const socket = await loggedIn(world.url, token);
    socket.send({ op: 'ping', req_id: 'p1' });
    expect(await socket.next()).toMatchObject({ op: 'pong', code: 0, req_id: 'p1' });
    socket.send({ op: 'logout' });
    expect((await socket.closed).code).toBe(1000);
    const closes = await shopEvents(world.ctx, 'bye', 'ConnectionClosed');
    expect(closes.map((e) => e.data)).toEqual([
      expect.objectContaining({ conn_id: socket.connId, reason: 'logout', close_code: 1000 }),
    ]);
    expect(await world.ctx.redis.hget(world.ctx.keys.presence('bye'), 'w1')).toBeNull();
  });
});
