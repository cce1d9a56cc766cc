// Identifiers: event ids sort by time, and a message id splits back into its event and its recipient (the edge
// refuses an ack for another device's message from the id alone).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareStreamIds,
  MessageId,
  messageIdOf,
  newConnId,
  newEventId,
  parseMessageId,
  parseStreamId,
} from '#events';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulid = fc.stringMatching(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
const clientId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const messageIdPattern = new RegExp(MessageId.pattern ?? '');

/** The ms a ULID carries in its first ten characters. */
function timeOf(id: string): number {
  return [...id.slice(0, 10)].reduce((ms, ch) => ms * 32 + CROCKFORD.indexOf(ch), 0);
}

describe('when a message id is derived from an event and a recipient', () => {
  it('splits back into the same event id and client id', () => {
    fc.assert(
      fc.property(ulid, clientId, (eventId, client) => {
        const id = messageIdOf(eventId, client);
        expect(parseMessageId(id)).toEqual({ eventId, clientId: client });
        expect(id).toMatch(messageIdPattern);
      }),
    );
  });

  it('keeps client ids that hold dots and colons whole', () => {
    expect(parseMessageId(messageIdOf('01JH0000000000000000000000', 'pos.1:a.b'))).toEqual({
      eventId: '01JH0000000000000000000000',
      clientId: 'pos.1:a.b',
    });
  });

  it('gives each recipient of one event its own id', () => {
    fc.assert(
      fc.property(ulid, fc.uniqueArray(clientId, { minLength: 2, maxLength: 10 }), (eventId, clients) => {
        const ids = clients.map((client) => messageIdOf(eventId, client));
        expect(new Set(ids).size).toBe(clients.length);
      }),
    );
  });

  it('refuses ids that are not <26-char event id>.<client id>', () => {
    for (const id of [
      '',
      'pos-1',
      '.pos-1',
      '01JH000000000000000000000.pos-1', // 25 characters before the dot
      '01JH00000000000000000000000.pos-1', // 27
      `01JH0000000000000000000000.${'x'.repeat(65)}`,
    ]) {
      expect(parseMessageId(id), id).toBeNull();
    }
  });
});

describe('when event ids are minted', () => {
  it('carries the time it was given', () => {
    const nowMs = Date.UTC(2030, 5, 1, 12, 0, 0, 123);
    expect(timeOf(newEventId(nowMs))).toBeGreaterThanOrEqual(nowMs);
  });

  it('sorts ids of later times after earlier ones', () => {
    // The factory is monotonic per process: each run starts after the last one's time, as a real clock would.
    let nowMs = Date.UTC(2040, 0, 1);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 2, maxLength: 50 }), (steps) => {
        const ids = steps.map((step) => {
          nowMs += step;
          return newEventId(nowMs);
        });
        expect([...ids].sort()).toEqual(ids);
        expect(timeOf(ids.at(-1)!)).toBe(nowMs);
      }),
    );
  });

  it('keeps ids minted in the same millisecond in minting order, all distinct', () => {
    const nowMs = Date.UTC(2050, 0, 1);
    const ids = Array.from({ length: 1000 }, () => newEventId(nowMs));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('never goes backwards when the clock does', () => {
    const first = newEventId(Date.UTC(2060, 0, 1));
    const second = newEventId(Date.UTC(2059, 0, 1));
    expect(second > first).toBe(true);
  });

  it('makes connection ids that are distinct and marked', () => {
    const ids = Array.from({ length: 100 }, () => newConnId());
    expect(new Set(ids).size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^c_[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});

describe('when stream ids are compared', () => {
  it('orders by time, then by sequence, numerically', () => {
    expect(compareStreamIds('10-0', '9-5')).toBeGreaterThan(0);
    expect(compareStreamIds('9-10', '9-9')).toBeGreaterThan(0);
    expect(compareStreamIds('9-9', '9-9')).toBe(0);
    expect(parseStreamId('1735689600000-42')).toEqual({ ms: 1735689600000, seq: 42 });
  });
});
