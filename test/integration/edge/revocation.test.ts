// Closes ordered from outside the edge. Revoked devices: refused at login (4403), closed while connected when
// the api publishes the close over the edge's channel (4403), and refused by the notify script should that
// close be lost (pub/sub is at most once). An operator's disconnect closes with 4000.
import { describe, expect, it } from 'vitest';
import { createEvent, encodeEdgeCommand } from '#events';
import { notifyFrame, openRaw, shopEvents, waitFor } from '#test-support';
import { edgeWorld, loggedIn, registered, revokeQuietly } from './fixture';

const world = edgeWorld();

describe('when a revoked device logs in', () => {
  it('refuses it with 403 and closes 4403, recording nothing', async () => {
    const { token } = await registered(world.ctx, 'r-login', 'w1', 'sub');
    await revokeQuietly(world, 'r-login', 'w1');
    const socket = await openRaw(world.url);
    socket.send({ op: 'login', token, req_id: 'l1' });
    expect(await socket.next()).toMatchObject({ op: 'login', code: 403, req_id: 'l1' });
    expect((await socket.closed).code).toBe(4403);
    expect(await shopEvents(world.ctx, 'r-login', 'DeviceLoggedIn')).toEqual([]);
    expect(await world.ctx.redis.hlen(world.ctx.keys.edgeConnections(world.edge.edgeId))).toBe(0);
  });

  it('refuses the token of an earlier registration after the device was registered again', async () => {
    const old = await registered(world.ctx, 'r-again', 'w1', 'sub');
    await revokeQuietly(world, 'r-again', 'w1');
    const fresh = await registered(world.ctx, 'r-again', 'w1', 'sub');
    const socket = await openRaw(world.url);
    socket.send({ op: 'login', token: old.token });
    expect(await socket.next()).toMatchObject({ op: 'login', code: 401 });
    expect((await socket.closed).code).toBe(4401);
    (await loggedIn(world.url, fresh.token)).ws.close();
  });
});

describe('when a device is revoked while connected', () => {
  it('closes its socket with 4403 when the close command arrives on the edge channel', async () => {
    const { token } = await registered(world.ctx, 'r-live', 'w1', 'sub');
    const socket = await loggedIn(world.url, token);
    // What the api does on DELETE: revoke in the log, then publish a close to the edge holding the socket.
    const connection = await world.eventLog.revoke(
      createEvent({ type: 'DeviceRevoked', shopId: 'r-live', source: 'api', data: { client_id: 'w1' } }),
    );
    expect(connection).toMatchObject({ conn_id: socket.connId, edge_id: world.edge.edgeId });
    await world.ctx.redis.spublish(
      world.ctx.keys.edgeChannelOfShop('r-live', connection!.edge_id),
      encodeEdgeCommand({
        kind: 'close',
        conn_id: connection!.conn_id,
        code: 4403,
        reason: 'device revoked',
      }),
    );
    expect(await socket.closed).toEqual({ code: 4403, reason: 'device revoked' });
    const closed = await waitFor(() =>
      shopEvents(world.ctx, 'r-live', 'ConnectionClosed').then((events) => events[0]),
    );
    expect(closed.data).toMatchObject({ conn_id: socket.connId, reason: 'revoked', close_code: 4403 });
  });

  it('refuses its next notify with 403 and closes 4403 when the close command was lost', async () => {
    const { token } = await registered(world.ctx, 'r-lost', 'w1', 'sub');
    await registered(world.ctx, 'r-lost', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    await revokeQuietly(world, 'r-lost', 'w1');
    socket.send(notifyFrame('after-revoke'));
    expect(await socket.next()).toMatchObject({ op: 'notify', code: 403, req_id: 'after-revoke' });
    expect((await socket.closed).code).toBe(4403);
    expect(await shopEvents(world.ctx, 'r-lost', 'NotifyRequested')).toEqual([]);
  });

  it('ignores close commands for a connection it does not hold, and malformed ones', async () => {
    const { token } = await registered(world.ctx, 'r-other', 'w1', 'sub');
    const socket = await loggedIn(world.url, token);
    const channel = world.ctx.keys.edgeChannelOfShop('r-other', world.edge.edgeId);
    await world.ctx.redis.spublish(
      channel,
      encodeEdgeCommand({ kind: 'close', conn_id: 'c_unknown', code: 4403, reason: 'device revoked' }),
    );
    await world.ctx.redis.spublish(channel, '{"kind":"nonsense"}');
    // Malformed commands for this very socket: a code no close frame may carry, a frame that is not text.
    await world.ctx.redis.spublish(
      channel,
      JSON.stringify({ kind: 'close', conn_id: socket.connId, code: 1005 }),
    );
    await world.ctx.redis.spublish(
      channel,
      JSON.stringify({ kind: 'deliver', conn_id: socket.connId, frames: [42] }),
    );
    // The channel keeps order: once this delivery arrives, the edge has handled the two commands before it.
    await world.ctx.redis.spublish(
      channel,
      encodeEdgeCommand({ kind: 'deliver', conn_id: socket.connId, frames: ['{"op":"broadcast","n":1}'] }),
    );
    expect(await socket.next()).toEqual({ op: 'broadcast', n: 1 });
    socket.send({ op: 'ping' });
    expect(await socket.next()).toMatchObject({ op: 'pong' });
    socket.ws.close();
  });
});

describe('when an operator disconnects a connection', () => {
  it('closes it with 4000 and records the close as operator', async () => {
    const { token } = await registered(world.ctx, 'r-op', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    await world.ctx.redis.spublish(
      world.ctx.keys.edgeChannelOfShop('r-op', world.edge.edgeId),
      encodeEdgeCommand({
        kind: 'close',
        conn_id: socket.connId,
        code: 4000,
        reason: 'closed by an operator',
      }),
    );
    expect(await socket.closed).toEqual({ code: 4000, reason: 'closed by an operator' });
    const closed = await waitFor(() =>
      shopEvents(world.ctx, 'r-op', 'ConnectionClosed').then((events) => events[0]),
    );
    expect(closed.data).toMatchObject({ conn_id: socket.connId, reason: 'operator', close_code: 4000 });
  });
});

describe('when a close command carries a long reason', () => {
  it('closes with the reason cut to what a close frame carries', async () => {
    const { token } = await registered(world.ctx, 'r-long', 'm1', 'main');
    const socket = await loggedIn(world.url, token);
    const reason = '操作员关闭'.repeat(30);
    await world.ctx.redis.spublish(
      world.ctx.keys.edgeChannelOfShop('r-long', world.edge.edgeId),
      encodeEdgeCommand({ kind: 'close', conn_id: socket.connId, code: 4000, reason }),
    );
    const closed = await socket.closed;
    expect(closed.code).toBe(4000);
    expect(reason.startsWith(closed.reason)).toBe(true);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
  });
});
