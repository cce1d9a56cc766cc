import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CloseInfo, type DeviceClient, isClientError, type ReconnectInfo } from '#client';
import { clientFor, ScriptedEdge } from './scripted-edge';

let edge: ScriptedEdge;
const clients: DeviceClient[] = [];

function client(options: Parameters<typeof clientFor>[1] = {}): DeviceClient {
  const created = clientFor(edge, options);
  clients.push(created);
  return created;
}

beforeEach(async () => {
  edge = await ScriptedEdge.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await edge.stop();
});

describe('when the edge accepts the login', () => {
  it('sends the token and the login fields, and resolves with conn_id and edge_id', async () => {
    const device = client({ type: '主' });
    const connected = device.connect();
    const peer = await edge.nextPeer();
    await expect(connected).resolves.toEqual({ conn_id: 'c0', edge_id: 'scripted', reconnected: false });
    expect(edge.peers[0]?.socket).toBe(peer.socket);
    expect(device.session?.conn_id).toBe('c0');
    expect(device.isReady).toBe(true);
  });

  it('sends exactly the login frame of the protocol, with only the fields it was given', async () => {
    await client({ type: '主' }).connect();
    await client({ token: 'other-token', shopId: undefined, clientId: undefined, type: undefined }).connect();
    expect(edge.logins).toEqual([
      { op: 'login', token: 'device-token', shop_id: 's1', client_id: 'pos1', type: '主' },
      { op: 'login', token: 'other-token' },
    ]);
  });

  it('answers a second connect() with the same login', async () => {
    const device = client();
    const first = await device.connect();
    await expect(device.connect()).resolves.toBe(first);
    expect(edge.peers).toHaveLength(1);
  });
});

describe('when the edge refuses the login for good', () => {
  it('rejects with the reply code and close code after a bad token, and does not reconnect', async () => {
    edge.loginAnswer = () => ({ code: 401, msg: 'bad or expired token', close: 4401 });
    const device = client();
    const closes: CloseInfo[] = [];
    device.on('close', (info) => closes.push(info));
    const failure = await device.connect().catch((err: unknown) => err);
    expect(isClientError(failure) && failure.kind).toBe('LOGIN_REFUSED');
    expect(failure).toMatchObject({ code: 401, closeCode: 4401, msg: 'bad or expired token' });
    expect(closes).toEqual([{ code: 4401, reason: 'bad or expired token', willReconnect: false }]);
    await expect(device.connect()).rejects.toBe(failure);
    expect(edge.peers).toHaveLength(1);
  });

  it('rejects with the close code when the edge closes with 4403 without a reply', async () => {
    edge.loginAnswer = (peer) => {
      peer.socket.close(4403, 'device revoked');
      return 'silent';
    };
    const device = client();
    const failure = await device.connect().catch((err: unknown) => err);
    expect(failure).toMatchObject({
      kind: 'CLOSED_FINAL',
      code: 4403,
      closeCode: 4403,
      msg: 'device revoked',
    });
    await expect(device.notify({ table_id: 1, type: 'add_dish' })).rejects.toBe(failure);
  });

  it('reports the final failure on the error event too', async () => {
    edge.loginAnswer = () => ({ code: 403, msg: 'device revoked', close: 4403 });
    const device = client();
    const errored = once(device, 'error');
    await expect(device.connect()).rejects.toMatchObject({ code: 403, closeCode: 4403 });
    const [err] = await errored;
    expect(err).toMatchObject({ kind: 'LOGIN_REFUSED', code: 403 });
  });
});

describe('when the login is refused for a passing reason', () => {
  it('logs in again after a backoff when the event log is unavailable (503)', async () => {
    edge.loginAnswer = (peer) =>
      peer.index === 0 ? { code: 503, msg: 'event log unavailable' } : { code: 0 };
    const device = client();
    const reconnects: ReconnectInfo[] = [];
    device.on('reconnect', (info) => reconnects.push(info));
    await expect(device.connect()).resolves.toMatchObject({ conn_id: 'c1' });
    expect(reconnects).toEqual([expect.objectContaining({ attempt: 1 })]);
  });

  it('rejects with the 503 when reconnecting is off', async () => {
    edge.loginAnswer = () => ({ code: 503, msg: 'event log unavailable' });
    const device = client({ reconnect: false });
    await expect(device.connect()).rejects.toMatchObject({ kind: 'LOGIN_REFUSED', code: 503 });
  });

  it('counts a login that is never answered as failed and tries again', async () => {
    edge.loginAnswer = (peer) => (peer.index === 0 ? 'silent' : { code: 0 });
    const device = client({ loginTimeoutMs: 100 });
    await expect(device.connect()).resolves.toMatchObject({ conn_id: 'c1' });
  });
});

describe('when nothing listens at the url', () => {
  it('rejects with CONNECTION_LOST and the network error when reconnecting is off', async () => {
    const url = edge.url;
    await edge.stop();
    edge = await ScriptedEdge.start();
    const device = client({ url, reconnect: false });
    await expect(device.connect()).rejects.toMatchObject({ kind: 'CONNECTION_LOST', closeCode: 1006 });
  });
});
