// Devices of a shop: register (DeviceRegistered, a fresh token), list (projection + live presence), revoke
// (DeviceRevoked) and rotate a token (DeviceTokenRotated), each then telling the live socket to close with 4403.
import { Type } from '@sinclair/typebox';
import { type Presence, rotateDeviceToken } from '#eventlog';
import { ClientId, createEvent, ERRORS, newEventId, normaliseDeviceType, rest, ShopId } from '#events';
import { type ApiContext, checkedEvent, closeConnection, liveEdges, readRedis } from '../context';
import { DEFAULT_LIMIT, decodeCursor, pageOf } from '../cursor';
import { deviceOf, selectDevice, selectDevices } from '../queries';
import { defineRoute, type Route, ShopPath } from '../route';

const DevicePath = Type.Object({ shopId: ShopId, clientId: ClientId });

const EXAMPLE_DEVICE: rest.DeviceView = {
  client_id: 'pos-1',
  type: 'main',
  online: false,
  revoked: false,
  legacy: false,
  registered_at: '2024-05-01T09:30:00.000Z',
  last_seen_at: null,
};

export function deviceRoutes(ctx: ApiContext): Route[] {
  const register = defineRoute({
    method: 'post',
    path: '/v1/shops/:shopId/devices',
    name: 'registerDevice',
    summary:
      'Registers a device (DeviceRegistered) and mints its token. The legacy types 主/副 are stored as main/sub; ' +
      'a revoked device may be registered again and gets a new token. `legacy: true` lets it log in over the ' +
      "original system's protocol as well (SPEC §9: no token, a client certificate of EDGE_LEGACY_CA).",
    params: ShopPath,
    body: rest.RegisterDeviceBody,
    success: { status: 201, description: 'the device and its token', schema: rest.RegisteredDevice },
    errors: ['CONFLICT', 'LOG_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      body: { client_id: 'pos-1', type: 'main' },
      response: { ...EXAMPLE_DEVICE, token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.…' },
    },
    async run({ params, body }) {
      const nowMs = ctx.nowMs();
      const type = normaliseDeviceType(body.type);
      // A fresh token id per registration: the tokens of an earlier registration of this client stop working.
      const tokenId = newEventId(nowMs);
      const token = await ctx.tokens.mint(
        { shop_id: params.shopId, client_id: body.client_id, type, token_id: tokenId },
        nowMs,
      );
      const event = checkedEvent(
        createEvent({
          type: 'DeviceRegistered',
          shopId: params.shopId,
          source: 'api',
          nowMs,
          data: {
            client_id: body.client_id,
            type,
            token_id: tokenId,
            ...(body.legacy === true ? { legacy: true } : {}),
          },
        }),
      );
      await ctx.eventLog.register(event);
      const device: rest.DeviceView = {
        client_id: body.client_id,
        type,
        online: false,
        revoked: false,
        legacy: body.legacy === true,
        registered_at: event.at,
        last_seen_at: null,
      };
      return { status: 201, body: { ...device, token } };
    },
  });

  const list = defineRoute({
    method: 'get',
    path: '/v1/shops/:shopId/devices',
    name: 'listDevices',
    summary: "The shop's devices, revoked ones included, in client_id order, with their online status.",
    params: ShopPath,
    query: rest.ListQuery,
    success: { status: 200, description: 'a page of devices', schema: rest.listOf(rest.Device) },
    errors: ['LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      query: { limit: 50 },
      response: { items: [EXAMPLE_DEVICE], next_cursor: null },
    },
    async run({ params, query }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = query.cursor === undefined ? null : decodeCursor(query.cursor, 1)[0]!;
      const [rows, online] = await Promise.all([
        selectDevices(ctx.pool, params.shopId, limit, after),
        liveEdges(ctx).then((edges) => readRedis(ctx.presence.online(params.shopId, edges))),
      ]);
      const page = pageOf(
        rows,
        limit,
        (row) => [row.client_id],
        (row) => deviceOf(row, online.has(row.client_id)),
      );
      return { status: 200, body: page };
    },
  });

  const revoke = defineRoute({
    method: 'delete',
    path: '/v1/shops/:shopId/devices/:clientId',
    name: 'revokeDevice',
    summary:
      'Revokes a device (DeviceRevoked): its tokens stop working and its live socket is closed with 4403.',
    params: DevicePath,
    success: { status: 204, description: 'revoked' },
    errors: ['NOT_FOUND', 'LOG_UNAVAILABLE'],
    example: { params: { shopId: 'shop-1', clientId: 'tablet-9' } },
    async run({ params }) {
      const event = checkedEvent(
        createEvent({
          type: 'DeviceRevoked',
          shopId: params.shopId,
          source: 'api',
          nowMs: ctx.nowMs(),
          data: { client_id: params.clientId },
        }),
      );
      const live = await ctx.eventLog.revoke(event);
      if (live !== null) await closeRefusedSocket(ctx, live, ERRORS.DEVICE_REVOKED.message);
      return { status: 204 };
    },
  });

  return [register, list, revoke, rotateTokenRoute(ctx)];
}

function rotateTokenRoute(ctx: ApiContext) {
  return defineRoute({
    method: 'post',
    path: '/v1/shops/:shopId/devices/:clientId/token',
    name: 'rotateDeviceToken',
    summary:
      "Rotates a registered device's token (DeviceTokenRotated): answers the device and its new token. The old " +
      'token is refused from now on (login: 401 and close 4401) and its live socket is closed with 4403; the ' +
      "device's type, registration and pending messages stay.",
    params: DevicePath,
    success: { status: 201, description: 'the device and its new token', schema: rest.RegisteredDevice },
    errors: ['NOT_FOUND', 'LOG_UNAVAILABLE', 'DATABASE_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1', clientId: 'waiter-1' },
      response: {
        ...EXAMPLE_DEVICE,
        client_id: 'waiter-1',
        type: 'sub',
        last_seen_at: '2024-05-02T18:02:11.000Z',
        token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.…',
      },
    },
    async run({ params }) {
      // last_seen_at is the projection's. Read first: were PostgreSQL away, nothing is rotated yet (a failure
      // after the rotation would lose the only copy of the new token while the old one is already refused).
      const row = await selectDevice(ctx.pool, params.shopId, params.clientId);
      const nowMs = ctx.nowMs();
      const tokenId = newEventId(nowMs);
      const event = checkedEvent(
        createEvent({
          type: 'DeviceTokenRotated',
          shopId: params.shopId,
          source: 'api',
          nowMs,
          data: { client_id: params.clientId, token_id: tokenId },
        }),
      );
      const { device, live } = await rotateDeviceToken(ctx.redis, ctx.keys, event);
      const token = await ctx.tokens.mint(
        { shop_id: params.shopId, client_id: params.clientId, type: device.type, token_id: tokenId },
        nowMs,
      );
      if (live !== null) await closeRefusedSocket(ctx, live, 'token rotated');
      const view: rest.DeviceView = {
        client_id: params.clientId,
        type: device.type,
        online: false, // the only live socket held the old token
        revoked: false,
        legacy: device.legacy === true,
        registered_at: device.registered_at,
        last_seen_at: row?.last_seen_at?.toISOString() ?? null,
      };
      return { status: 201, body: { ...view, token } };
    },
  });
}

/**
 * Tells the edge of a socket whose device was revoked, or whose token was rotated, to close it with 4403. The
 * change is recorded whatever happens here, so the answer stays a success: the socket's notifies and logins are
 * refused from now on (the registry is checked in the same atomic step), and only the close itself can be late.
 */
async function closeRefusedSocket(ctx: ApiContext, live: Presence, why: string): Promise<void> {
  const line = {
    shop_id: live.shop_id,
    client_id: live.client_id,
    conn_id: live.conn_id,
    edge_id: live.edge_id,
    why,
  };
  try {
    if (!(await liveEdges(ctx)).has(live.edge_id)) return; // its edge died, and the socket with it
    if (!(await closeConnection(ctx, live, ERRORS.DEVICE_REVOKED.close, why))) {
      ctx.log.warn(line, 'recorded, but the edge did not take the close command');
    }
  } catch (err) {
    ctx.log.warn({ ...line, reason: (err as Error).message }, 'recorded, but the close command was not sent');
  }
}
