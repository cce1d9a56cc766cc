// Creating an event envelope and moving it in and out of Redis stream fields.
import type { BrokerEvent, EventData, EventOf, EventType } from './catalogue';
import { CATALOGUE, explainInvalidEvent } from './catalogue';
import { newEventId } from './ids';

export interface NewEvent<T extends EventType> {
  type: T;
  shopId: string;
  source: string;
  data: EventData<T>;
  /** Time and id are parameters so that tests and replays need no clock. */
  nowMs?: number;
  id?: string;
}

export function createEvent<T extends EventType>(init: NewEvent<T>): EventOf<T> {
  const nowMs = init.nowMs ?? Date.now();
  // The object literal is a member of the union by construction; TypeScript cannot narrow a generic union.
  return {
    id: init.id ?? newEventId(nowMs),
    type: init.type,
    v: CATALOGUE[init.type].v,
    at: new Date(nowMs).toISOString(),
    shop_id: init.shopId,
    source: init.source,
    data: init.data,
  } as EventOf<T>;
}

/** Stream entry fields: `t` (type, for cheap filtering) and `e` (the envelope as JSON). */
export function encodeEvent(event: BrokerEvent): [string, string, string, string] {
  return ['t', event.type, 'e', JSON.stringify(event)];
}

export type DecodeResult = { ok: true; event: BrokerEvent } | { ok: false; reason: string };

/** Reads an entry's fields (a flat [k, v, k, v] list as Redis returns them) back into a validated event. */
export function decodeEntry(fields: readonly string[]): DecodeResult {
  let body: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'e') body = fields[i + 1];
  }
  if (body === undefined) return { ok: false, reason: 'entry has no "e" field' };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'entry body is not JSON' };
  }
  const problem = explainInvalidEvent(value);
  if (problem !== null) return { ok: false, reason: problem };
  return { ok: true, event: value as BrokerEvent };
}
