// Identifiers: time-ordered event ids, and the one rule that derives a message id from an event and a recipient.
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * ulid's default source asks the CSPRNG for one byte at a time, 16 times per id (300 µs for an id in a new
 * millisecond, 7 % of an edge's CPU under load). Same CSPRNG, drawn 4 KiB at a time: ~2 µs per id.
 */
const pool = new Uint8Array(4096);
let poolAt = pool.length;
function pooledRandom(): number {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  return pool[poolAt++]! / 256;
}

const nextUlid = monotonicFactory(pooledRandom);

/** A time-ordered, unique event id (ULID: 26 chars, sorts by creation time). */
export function newEventId(nowMs: number = Date.now()): string {
  return nextUlid(nowMs);
}

/** A random connection id, unique across edges. */
export function newConnId(nowMs: number = Date.now()): string {
  return `c_${nextUlid(nowMs)}`;
}

/**
 * SPEC §3: a message id is unique per (notify, recipient) and stable across redeliveries.
 * It is `<event id>.<recipient client id>`: ULIDs hold no '.', so the first '.' splits it back,
 * and the edge can refuse an ack for another device's message without a lookup.
 */
export function messageIdOf(eventId: string, recipientClientId: string): string {
  return `${eventId}.${recipientClientId}`;
}

export function parseMessageId(id: string): { eventId: string; clientId: string } | null {
  const dot = id.indexOf('.');
  if (dot !== 26 || id.length > 26 + 1 + 64) return null;
  return { eventId: id.slice(0, dot), clientId: id.slice(dot + 1) };
}

/** A Redis stream entry id, `<ms>-<seq>`, as two numbers that compare in log order. */
export interface StreamPosition {
  ms: number;
  seq: number;
}

export function parseStreamId(id: string): StreamPosition {
  const dash = id.indexOf('-');
  return { ms: Number(id.slice(0, dash)), seq: Number(id.slice(dash + 1)) };
}

export function compareStreamIds(a: string, b: string): number {
  const pa = parseStreamId(a);
  const pb = parseStreamId(b);
  return pa.ms - pb.ms || pa.seq - pb.seq;
}
