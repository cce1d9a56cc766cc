import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PresenceBook } from '#eventlog';
import { compile, rest } from '#events';
import { brokerInProcess, openRaw, type RawSocket, registerDevice } from '#test-support';

const isConnectionPage = compile(rest.listOf(rest.Connection));

describe('when devices are connected to an edge', () => {
  const broker = brokerInProcess({ api: true, edge: true });
  const sockets: RawSocket[] = [];

  async function connect(shopId: string, clientId: string, type: 'main' | 'sub'): Promise<string> {
    const socket = await openRaw(broker.wsUrl);
    sockets.push(socket);
    socket.send({ op: 'login', token: await registerDevice(broker.ctx, shopId, clientId, type) });
    const reply = await socket.next((f) => f.op === 'login');
    expect(reply).toMatchObject({ code: 0 });
    return (reply.data as { conn_id: string }).conn_id;
  }

  beforeAll(async () => {
    await connect('shop-a', 'pos-1', 'main');
    await connect('shop-a', 'waiter-1', 'sub');
    await connect('shop-a', 'waiter-2', 'sub');
    await connect('shop-b', 'waiter-1', 'sub');
  });
  afterAll(async () => {
    for (const socket of sockets) socket.ws.close();
  });

  it('lists the live connections of a shop', async () => {
    const answer = await broker.api.request('GET', '/v1/connections?shop_id=shop-a');
    expect(answer.status).toBe(200);
    expect(isConnectionPage.is(answer.body)).toBe(true);
    const items = answer.body.items as rest.ConnectionView[];
    expect(items.map((c) => c.client_id).sort()).toEqual(['pos-1', 'waiter-1', 'waiter-2']);
    expect(items[0]).toMatchObject({
      edge_id: broker.edge.edgeId,
      shop_id: 'shop-a',
      remote_addr: expect.any(String),
    });
    expect(answer.body.next_cursor).toBeNull();
  });

  it('pages through every connection across shops', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const answer = await broker.api.request('GET', `/v1/connections?limit=3${query}`);
      expect(answer.status).toBe(200);
      seen.push(...(answer.body.items as rest.ConnectionView[]).map((c) => `${c.shop_id}/${c.client_id}`));
      cursor = answer.body.next_cursor as string | null;
    } while (cursor !== null);
    expect(seen.sort()).toEqual(['shop-a/pos-1', 'shop-a/waiter-1', 'shop-a/waiter-2', 'shop-b/waiter-1']);
  });

  it('tells which main devices of a shop are online', async () => {
    const online = await broker.api.request('GET', '/v1/shops/shop-a/main-online');
    expect(online.body).toEqual({
      online: true,
      devices: [{ client_id: 'pos-1', conn_id: expect.any(String), edge_id: broker.edge.edgeId }],
    });
    expect((await broker.api.request('GET', '/v1/shops/shop-b/main-online')).body).toEqual({
      online: false,
      devices: [],
    });
  });

  it('closes one connection with 4000 and answers 202', async () => {
    const connId = await connect('shop-c', 'waiter-9', 'sub');
    const socket = sockets.at(-1)!;
    const answer = await broker.api.request('POST', `/v1/connections/${connId}/disconnect`);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ conn_id: connId, edge_id: broker.edge.edgeId });
    expect((await socket.closed).code).toBe(4000);
  });

  it('answers a disconnect of a connection that is not live with 404', async () => {
    const answer = await broker.api.request('POST', '/v1/connections/c_nothing/disconnect');
    expect(answer.status).toBe(404);
    expect(answer.body.error?.code).toBe('NOT_FOUND');
  });
});

describe('when the edge holding a connection is not listening for commands', () => {
  const broker = brokerInProcess({ api: true });

  it('answers a disconnect with 503 EDGE_UNREACHABLE instead of claiming it was sent', async () => {
    // An edge that beats and lists a connection but has no subscriber: what a subscriber lost to a reconnect
    // looks like from the api.
    const edgeId = 'edge-deaf';
    await new PresenceBook(broker.ctx.redis, broker.ctx.keys).beat(edgeId, Date.now());
    const connection: rest.ConnectionView = {
      conn_id: 'c_deaf',
      edge_id: edgeId,
      shop_id: 'shop-z',
      client_id: 'waiter-1',
      type: 'sub',
      connected_at: new Date().toISOString(),
      remote_addr: '127.0.0.1',
      legacy: false,
    };
    await broker.ctx.redis.hset(
      broker.ctx.keys.edgeConnections(edgeId),
      connection.conn_id,
      JSON.stringify(connection),
    );

    const answer = await broker.api.request('POST', '/v1/connections/c_deaf/disconnect');
    expect(answer.status).toBe(503);
    expect(answer.body.error?.code).toBe('EDGE_UNREACHABLE');
  });
});
