// A fresh edge meets a crowd: after a deploy every device of a shop reconnects at once, and each login's
// listing, script and reply interleave with the others'.
import { beforeAll, describe, expect, it } from 'vitest';
import { openRaw, registerDevice } from '#test-support';
import { edgeWorld } from './fixture';

const DEVICES = 60;

describe('when many devices log in to a fresh edge at once', () => {
  const world = edgeWorld();
  let tokens: string[];
  beforeAll(async () => {
    tokens = await Promise.all(
      Array.from({ length: DEVICES }, (_, i) => registerDevice(world.ctx, 'crowd', `d${i}`, 'sub')),
    );
  });

  it('logs every one of them in', async () => {
    const sockets = await Promise.all(tokens.map(() => openRaw(world.url)));
    sockets.forEach((socket, i) => {
      socket.send({ op: 'login', token: tokens[i] });
    });
    const replies = await Promise.all(sockets.map((socket) => socket.next((f) => f.op === 'login')));
    expect(replies.map((r) => r.code)).toEqual(tokens.map(() => 0));
    expect(await world.ctx.redis.hlen(world.ctx.keys.presence('crowd'))).toBe(DEVICES);
    for (const socket of sockets) socket.ws.close();
  });
});
