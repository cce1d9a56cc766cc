import { describe, expect, it } from 'vitest';
import { brokerInProcess, notifyFrame, openRaw, registerDevice, waitFor } from '#test-support';

describe('when a sub device notifies', () => {
  const broker = brokerInProcess({ edge: true, dispatcher: true });

  it('pushes one message to each main device, which acks it', async () => {
    const url = broker.wsUrl;
    const subToken = await registerDevice(broker.ctx, 'shop1', 'waiter-1', 'sub');
    const mainTokens = [
      await registerDevice(broker.ctx, 'shop1', 'cash-1', 'main'),
      await registerDevice(broker.ctx, 'shop1', 'cash-2', 'main'),
    ];
    const mains = await Promise.all(mainTokens.map(() => openRaw(url)));
    for (const [i, main] of mains.entries()) {
      main.send({ op: 'login', token: mainTokens[i] });
      expect(await main.next((f) => f.op === 'login')).toMatchObject({ code: 0 });
    }
    const sub = await openRaw(url);
    sub.send({ op: 'login', token: subToken });
    expect(await sub.next((f) => f.op === 'login')).toMatchObject({ code: 0 });

    sub.send(notifyFrame('r1'));
    const reply = await sub.next((f) => f.op === 'notify');
    expect(reply).toMatchObject({ code: 0, req_id: 'r1' });
    const eventId = (reply.data as { event_id: string }).event_id;

    const received = await Promise.all(mains.map((main) => main.next((f) => f.op === 'message')));
    expect(received.map((m) => m.id).sort()).toEqual([`${eventId}.cash-1`, `${eventId}.cash-2`]);
    expect(received[0]).toMatchObject({
      table_id: 7,
      type: 'add_dish',
      status: 1,
      data: { dish: 'noodles' },
      attempt: 1,
      from_client_id: 'waiter-1',
    });
    for (const [i, main] of mains.entries()) main.send({ op: 'ack', id: received[i]!.id });

    await waitFor(async () => (await broker.ctx.redis.hlen(broker.ctx.keys.inbox('shop1'))) === 0, {
      what: 'inbox emptied by acks',
    });
    await broker.dispatcher.whenCaughtUp();
    for (const socket of [...mains, sub]) socket.ws.close();
  });
});
