import { afterAll, describe, expect, it } from 'vitest';
import { type Answer, brokerInProcess, openRaw, type RawSocket, registerDevice } from '#test-support';

interface Operation {
  operationId: string;
  parameters: Array<{ name: string; in: 'path' | 'query' | 'header'; example?: unknown }>;
  requestBody?: { content: { 'application/json': { example: unknown } } };
  responses: Record<string, unknown>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

/**
 * The order a back office would call them in: register first, revoke last. An id that only the running system
 * can know (a message id, a connection id) replaces the example's id; everything else is sent as documented.
 */
const ORDER = [
  'healthz',
  'readyz',
  'metrics',
  'registerDevice',
  'listDevices',
  'notify',
  'broadcast',
  'listMessages',
  'handleMessage',
  'mainOnline',
  'listConnections',
  'disconnect',
  'rotateDeviceToken',
  'revokeDevice',
  'openApi',
];

describe('when every example of openapi.json is sent to the running API', () => {
  const broker = brokerInProcess({ api: true, edge: true, persister: true });
  let device: RawSocket | undefined;

  afterAll(async () => {
    device?.ws.close();
  });

  it('accepts each of them with the documented success status', async () => {
    const document = (await broker.api.request('GET', '/v1/openapi.json', { key: null }))
      .body as unknown as Document;
    const operations = Object.entries(document.paths).flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([method, operation]) => ({ path, method, operation })),
    );
    expect(operations.map((o) => o.operation.operationId).sort()).toEqual([...ORDER].sort());

    // The world the examples speak of: shop-1 with a waiter (whose token the rotate example rotates), and a tablet
    // for the revoke example.
    await registerDevice(broker.ctx, 'shop-1', 'waiter-1', 'sub');
    await registerDevice(broker.ctx, 'shop-1', 'tablet-9', 'sub');
    const known: Record<string, string> = {};
    const answers = new Map<string, Answer>();

    for (const operationId of ORDER) {
      const { path, method, operation } = operations.find((o) => o.operation.operationId === operationId)!;
      if (operationId === 'handleMessage') {
        await broker.persister.whenCaughtUp();
        known.id = `${answers.get('notify')?.body.event_id}.pos-1`;
      }
      if (operationId === 'disconnect') {
        device = await openRaw(broker.wsUrl);
        device.send({ op: 'login', token: answers.get('registerDevice')?.body.token });
        known.connId = ((await device.next((f) => f.op === 'login')).data as { conn_id: string }).conn_id;
      }
      let url = path;
      const query = new URLSearchParams();
      for (const parameter of operation.parameters) {
        const value = known[parameter.name] ?? parameter.example;
        if (value === undefined) continue;
        if (parameter.in === 'path')
          url = url.replace(`{${parameter.name}}`, encodeURIComponent(String(value)));
        if (parameter.in === 'query') query.set(parameter.name, String(value));
      }
      if (query.size > 0) url += `?${query}`;
      const body = operation.requestBody?.content['application/json'].example;
      const answer = await broker.api.request(method.toUpperCase(), url, { body });
      const success = Object.keys(operation.responses).find((status) => status.startsWith('2'));
      expect({ operationId, status: answer.status, error: answer.body.error }).toEqual({
        operationId,
        status: Number(success),
        error: undefined,
      });
      answers.set(operationId, answer);
    }
    expect((await device!.closed).code).toBe(4000);
  });
});
