import { describe, expect, it } from 'vitest';
import { AckQueue } from '../../libs/client/src/ack-queue';

function queue(autoAck = true) {
  let flushes = 0;
  const acks = new AckQueue({ capacity: 100, autoAck, flush: () => flushes++ });
  return { acks, flushes: () => flushes };
}

describe('when pushes arrive with auto-ack on', () => {
  it('acks messages and handled notices of one burst in one frame, each in its own field', async () => {
    const { acks, flushes } = queue();
    expect(acks.received('message', 'E1.pos1')).toBe(false);
    expect(acks.received('handled', 'E0.pos1')).toBe(false);
    expect(acks.received('message', 'E2.pos1')).toBe(false);
    await Promise.resolve();
    expect(flushes()).toBe(1);
    expect(acks.takeFrames()).toEqual([{ op: 'ack', ids: ['E1.pos1', 'E2.pos1'], handled: ['E0.pos1'] }]);
    expect(acks.takeFrames()).toEqual([]);
  });

  it('says a repeat is one and acks it again', () => {
    const { acks } = queue();
    acks.received('handled', 'E1.pos1');
    acks.takeFrames();
    expect(acks.received('handled', 'E1.pos1')).toBe(true);
    expect(acks.takeFrames()).toEqual([{ op: 'ack', handled: ['E1.pos1'] }]);
  });

  it('keeps messages and notices apart: a notice about an acked message is new', () => {
    const { acks } = queue();
    acks.received('message', 'E1.pos1');
    expect(acks.received('handled', 'E1.pos1')).toBe(false);
    expect(acks.received('message', 'E1.pos1')).toBe(true);
  });
});

describe('when auto-ack is off', () => {
  it('acks nothing until the app does, and then treats repeats as acked', async () => {
    const { acks, flushes } = queue(false);
    expect(acks.received('handled', 'E1.pos1')).toBe(false);
    expect(acks.received('handled', 'E1.pos1')).toBe(false);
    await Promise.resolve();
    expect(flushes()).toBe(0);
    expect(acks.takeFrames()).toEqual([]);
    acks.ack('handled', ['E1.pos1']);
    acks.ack('message', 'E2.pos1');
    await Promise.resolve();
    expect(flushes()).toBe(1);
    expect(acks.takeFrames()).toEqual([{ op: 'ack', ids: ['E2.pos1'], handled: ['E1.pos1'] }]);
    expect(acks.received('handled', 'E1.pos1')).toBe(true);
  });
});
