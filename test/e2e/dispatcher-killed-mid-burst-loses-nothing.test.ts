import { afterAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { start as startDispatcher } from '#dispatcher';
import {
  brokerInProcess,
  loginRaw,
  readLog,
  registerDevice,
  spawnService,
  waitFor,
  waitForLog,
} from '#test-support';

/** A main device that acks every message it gets and remembers the ids. */
function autoAck(socket: WebSocket, received: Set<string>) {
  socket.on('message', (data) => {
    const frame = JSON.parse(String(data)) as { op: string; id?: string };
    if (frame.op !== 'message' || !frame.id) return;
    received.add(frame.id);
    socket.send(JSON.stringify({ op: 'ack', id: frame.id }));
  });
}

describe('when the dispatcher is killed with SIGKILL in the middle of a burst', () => {
  const broker = brokerInProcess(
    { edge: true },
    {
      DELIVERY_RETRY_FIRST_MS: '200',
      DELIVERY_RETRY_MAX_MS: '1000',
      EDGE_RATE_PER_S: '10000',
      EDGE_RATE_BURST: '10000',
    },
  );
  let survivor: Awaited<ReturnType<typeof startDispatcher>> | undefined;
  afterAll(async () => {
    await survivor?.stop();
  });

  it('every message still reaches every main and is acked exactly once', async () => {
    const url = broker.wsUrl;
    const doomed = spawnService('dispatcher', { ...broker.ctx.env, LOG_LEVEL: 'info' });
    await waitForLog(doomed, 'dispatcher started');
    const sub = await loginRaw(url, await registerDevice(broker.ctx, 'burst', 'w1', 'sub'));
    const received = [new Set<string>(), new Set<string>()];
    for (const [i, set] of received.entries()) {
      const main = await loginRaw(url, await registerDevice(broker.ctx, 'burst', `m${i}`, 'main'));
      autoAck(main.ws, set);
    }

    const total = 300;
    for (let i = 0; i < total; i++) {
      sub.send({ op: 'notify', req_id: `n${i}`, table_id: i, type: 'add_dish', data: { i } });
      if (i === total / 3) {
        await waitFor(() => received[0]!.size > 0, { what: 'the doomed dispatcher to deliver something' });
        const { signal } = await doomed.kill('SIGKILL');
        expect(signal).toBe('SIGKILL');
        survivor = await startDispatcher(broker.ctx.config, { log: broker.ctx.log, healthServer: false });
      }
    }
    const replies = [];
    for (let i = 0; i < total; i++) replies.push(await sub.next((f) => f.op === 'notify'));
    expect(replies.every((r) => r.code === 0)).toBe(true);

    await waitFor(() => received.every((set) => set.size === total), {
      timeoutMs: 20_000,
      what: 'all messages received',
    });
    await waitFor(async () => (await broker.ctx.redis.hlen(broker.ctx.keys.inbox('burst'))) === 0, {
      what: 'every message acked',
    });
    const notified = await readLog(broker.ctx, 'NotifyRequested');
    expect(notified).toHaveLength(total);
    const deliveredIds = (await readLog(broker.ctx, 'MessageDelivered')).flatMap((e) =>
      e.type === 'MessageDelivered' ? e.data.ids : [],
    );
    expect(deliveredIds).toHaveLength(total * 2);
    expect(new Set(deliveredIds).size).toBe(total * 2);
    sub.ws.close();
  });
});
