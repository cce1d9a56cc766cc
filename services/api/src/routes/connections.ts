// Live connections, read from the edges' own lists in Redis (only edges still beating count): all of them, a
// shop's main devices, and an operator's disconnect, sent to the edge that holds the socket.
import { Type } from '@sinclair/typebox';
import { BrokerError, ERRORS, rest } from '#events';
import { type ApiContext, closeConnection, liveEdges, readRedis } from '../context';
import { DEFAULT_LIMIT, decodeCursor, pageOf } from '../cursor';
import { defineRoute, type Route, ShopPath } from '../route';

const ConnectionPath = Type.Object({ connId: Type.String({ minLength: 1, maxLength: 64 }) });

const EXAMPLE_CONNECTION: rest.ConnectionView = {
  conn_id: 'c_01HXA6Q8N4W7K2ZJ3M5P9R1T0X',
  edge_id: 'edge-a:8080',
  shop_id: 'shop-1',
  client_id: 'pos-1',
  type: 'main',
  connected_at: '2024-05-01T09:30:05.000Z',
  remote_addr: '10.0.0.7',
  legacy: false,
};

export function connectionRoutes(ctx: ApiContext): Route[] {
  const mainOnline = defineRoute({
    method: 'get',
    path: '/v1/shops/:shopId/main-online',
    name: 'mainOnline',
    summary: 'Whether any main device of the shop is connected, and which.',
    params: ShopPath,
    success: { status: 200, description: 'the connected main devices', schema: rest.MainOnline },
    errors: ['LOG_UNAVAILABLE'],
    example: {
      params: { shopId: 'shop-1' },
      response: {
        online: true,
        devices: [{ client_id: 'pos-1', conn_id: EXAMPLE_CONNECTION.conn_id, edge_id: 'edge-a:8080' }],
      },
    },
    async run({ params }) {
      const online = await readRedis(ctx.presence.online(params.shopId, await liveEdges(ctx)));
      const devices = [...online.values()]
        .filter((presence) => presence.type === 'main')
        .map(({ client_id, conn_id, edge_id }) => ({ client_id, conn_id, edge_id }))
        .sort((a, b) => a.client_id.localeCompare(b.client_id));
      return { status: 200, body: { online: devices.length > 0, devices } };
    },
  });

  const list = defineRoute({
    method: 'get',
    path: '/v1/connections',
    name: 'listConnections',
    summary: 'Live connections across all edges, in conn_id order (oldest first), optionally of one shop.',
    query: rest.ConnectionsQuery,
    success: { status: 200, description: 'a page of connections', schema: rest.listOf(rest.Connection) },
    errors: ['LOG_UNAVAILABLE'],
    example: {
      query: { shop_id: 'shop-1', limit: 50 },
      response: { items: [EXAMPLE_CONNECTION], next_cursor: null },
    },
    async run({ query }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = query.cursor === undefined ? null : decodeCursor(query.cursor, 1)[0]!;
      const all = await readRedis(ctx.presence.connections(await liveEdges(ctx)));
      const shown = all
        .filter(
          (c) =>
            (query.shop_id === undefined || c.shop_id === query.shop_id) &&
            (after === null || c.conn_id > after),
        )
        .sort((a, b) => (a.conn_id < b.conn_id ? -1 : a.conn_id > b.conn_id ? 1 : 0));
      const page = pageOf(
        shown.slice(0, limit + 1),
        limit,
        (c) => [c.conn_id],
        (c): rest.ConnectionView => ({
          conn_id: c.conn_id,
          edge_id: c.edge_id,
          shop_id: c.shop_id,
          client_id: c.client_id,
          type: c.type,
          connected_at: c.connected_at,
          remote_addr: c.remote_addr,
          legacy: c.legacy === true,
        }),
      );
      return { status: 200, body: page };
    },
  });

  const disconnect = defineRoute({
    method: 'post',
    path: '/v1/connections/:connId/disconnect',
    name: 'disconnect',
    summary:
      'Closes one live connection wherever it is (close code 4000); the edge records ConnectionClosed. ' +
      'The device may reconnect.',
    params: ConnectionPath,
    success: { status: 202, description: 'the close was sent to the edge', schema: rest.Disconnecting },
    errors: ['NOT_FOUND', 'LOG_UNAVAILABLE', 'EDGE_UNREACHABLE'],
    example: {
      params: { connId: EXAMPLE_CONNECTION.conn_id },
      response: { conn_id: EXAMPLE_CONNECTION.conn_id, edge_id: 'edge-a:8080' },
    },
    async run({ params }) {
      const all = await readRedis(ctx.presence.connections(await liveEdges(ctx)));
      const connection = all.find((c) => c.conn_id === params.connId);
      if (connection === undefined) throw new BrokerError('NOT_FOUND', `no live connection ${params.connId}`);
      const { close, message } = ERRORS.CLOSED_BY_OPERATOR;
      if (!(await closeConnection(ctx, connection, close, message))) {
        throw new BrokerError('EDGE_UNREACHABLE', `edge ${connection.edge_id} is not listening for commands`);
      }
      return { status: 202, body: { conn_id: connection.conn_id, edge_id: connection.edge_id } };
    },
  });

  return [mainOnline, list, disconnect];
}
