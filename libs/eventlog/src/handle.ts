// Handling a request (SPEC §10), for the edge (a main device's `handle`) and the api (REST handle, legacy deal):
// the copies of one notify are one request, and of the handles of it the first wins. PostgreSQL's projection says
// which copies exist and whether the request is handled; the handle script (handle-7.lua) decides the race between
// handles that the projection does not show yet, records the one MessageHandled, and files the `handled` notices.
import { decodeTime } from 'ulid';
import {
  BrokerError,
  createEvent,
  type HandledBy,
  type Keys,
  newEventId,
  noticeIdOf,
  parseMessageId,
} from '#events';
import { counter, delay, type Pool, type RedisClient } from '#runtime';
import { asLogError, isTransientFailure } from './failures';
import { runScript } from './scripts';

/**
 * How long a handling record stays in Redis. It only has to outlive the projection's lag (after that PostgreSQL
 * shows the request handled), so it is short, and Redis keeps no record per request for long.
 */
export const HANDLING_RECORD_MS = 60 * 60 * 1000;

// Notices pending across the broker: filed minus acked (a notice also leaves when its device never acks it and is
// revoked; then the difference over-counts, as an alert should).
const noticesFiled = counter(
  'broker_handled_notices_total',
  "'handled' notices filed for the other cashiers of a handled request (SPEC §10)",
);
const noticesAcked = counter('broker_handled_notice_acks_total', "'handled' notices acked by their device");
const handles = counter(
  'broker_handles_total',
  'Handles of a request (SPEC §10), by outcome: handled, repeat (same handler again), conflict (409)',
  ['outcome'],
);

/** A notify not yet projected is waited for this long before its message counts as unknown. */
const PROJECTION_WAIT_MS = 2000;
const PROJECTION_POLL_MS = 50;

/** Who handled a request first, when and with what status. */
export interface HandlingRecord {
  by: HandledBy;
  at: string;
  status: number;
  /** The copy that was handled. */
  id: string;
}

export type HandleOutcome =
  /** Recorded: the MessageHandled event, and how many `handled` notices went out. */
  | { kind: 'handled'; eventId: string; requestId: string; streamId: string; notices: number; at: string }
  /** The same handler had handled it with the same status: a safe retry, nothing recorded. */
  | { kind: 'repeat'; requestId: string; first: HandlingRecord }
  /** Someone else was first (SPEC §10: 409 with who, when and the status). */
  | { kind: 'conflict'; requestId: string; first: HandlingRecord };

export interface HandleDeps {
  redis: RedisClient;
  keys: Keys;
  pool: Pool;
  /** Monotonic waits; injectable for tests. */
  nowMs?: () => number;
}

export interface HandleInput {
  shopId: string;
  /** The copy handled. A device may handle only its own copies (checked by the caller). */
  messageId: string;
  status: number;
  by: HandledBy;
  /** `edge:<id>` or `api`. */
  source: string;
  nowMs: number;
}

interface CopyRow {
  id: string;
  shop_id: string;
  to_client_id: string;
  status: number;
  handled_at: Date | null;
  handled_by: HandledBy | null;
}

async function copiesOf(pool: Pool, requestId: string): Promise<CopyRow[]> {
  try {
    const result = await pool.query<CopyRow>(
      'SELECT id, shop_id, to_client_id, status, handled_at, handled_by FROM messages WHERE event_id = $1',
      [requestId],
    );
    return result.rows;
  } catch (err) {
    if (isTransientFailure(err)) throw new BrokerError('DATABASE_UNAVAILABLE');
    // No database or no schema yet: the persister creates both at its start; until then, try again later.
    const code = (err as { code?: unknown }).code;
    if (code === '3D000' || code === '42P01')
      throw new BrokerError('DATABASE_UNAVAILABLE', 'projections not set up yet (no persister has started)');
    throw err;
  }
}

function sameHandler(a: HandledBy, b: HandledBy): boolean {
  return a.kind === b.kind && (a.kind === 'api' || (b.kind === 'device' && a.client_id === b.client_id));
}

/** What the projection says of the request: answers from it when it shows the request handled. */
function decidedBy(rows: CopyRow[], input: HandleInput, requestId: string): HandleOutcome | null {
  let first: CopyRow | null = null;
  for (const row of rows) {
    if (row.handled_at !== null && (first === null || row.handled_at < first.handled_at!)) first = row;
  }
  if (first === null) return null;
  const record: HandlingRecord = {
    by: first.handled_by ?? { kind: 'api' },
    at: first.handled_at!.toISOString(),
    status: first.status,
    id: first.id,
  };
  const isRepeat = sameHandler(record.by, input.by) && record.status === input.status;
  return { kind: isRepeat ? 'repeat' : 'conflict', requestId, first: record };
}

/**
 * The request's copies when the projection does not show them yet (the notify is seconds old): the mains
 * registered before the notify, as the notify script chose them (SPEC §5.2).
 */
async function copiesFromRegistry(deps: HandleDeps, shopId: string, requestId: string): Promise<string[]> {
  const registry = await deps.redis.hgetall(deps.keys.devices(shopId));
  const notifiedAt = new Date(decodeTime(requestId)).toISOString();
  const copies: string[] = [];
  for (const [clientId, json] of Object.entries(registry)) {
    const device = JSON.parse(json) as { type: string; registered_at: string };
    if (device.type === 'main' && device.registered_at <= notifiedAt) copies.push(`${requestId}.${clientId}`);
  }
  return copies;
}

/** Handles the request `input.messageId` belongs to; NOT_FOUND when the shop has no such message. */
export async function handleRequest(deps: HandleDeps, input: HandleInput): Promise<HandleOutcome> {
  const outcome = await decide(deps, input);
  handles.inc({ outcome: outcome.kind });
  return outcome;
}

async function decide(deps: HandleDeps, input: HandleInput): Promise<HandleOutcome> {
  const parsed = parseMessageId(input.messageId);
  if (parsed === null) throw new BrokerError('NOT_FOUND', `no message ${input.messageId}`);
  const requestId = parsed.eventId;
  const now = deps.nowMs ?? (() => performance.now());

  let rows = await copiesOf(deps.pool, requestId);
  let copies: string[];
  if (rows.length === 0) {
    // Not projected yet. Still in the inbox: it exists, and the registry says who else holds a copy.
    const isPending =
      (await deps.redis.hexists(deps.keys.inbox(input.shopId), input.messageId).catch((err: unknown) => {
        throw asLogError(err);
      })) === 1;
    if (isPending) {
      copies = await copiesFromRegistry(deps, input.shopId, requestId);
      if (!copies.includes(input.messageId)) copies.push(input.messageId);
    } else {
      const deadline = now() + PROJECTION_WAIT_MS;
      while (rows.length === 0 && now() < deadline) {
        await delay(PROJECTION_POLL_MS);
        rows = await copiesOf(deps.pool, requestId);
      }
      if (rows.length === 0) throw new BrokerError('NOT_FOUND', `no message ${input.messageId}`);
      copies = rows.map((row) => row.id);
    }
  } else {
    copies = rows.map((row) => row.id);
  }
  if (rows.length > 0) {
    if (rows[0]!.shop_id !== input.shopId || !copies.includes(input.messageId))
      throw new BrokerError('NOT_FOUND', `no message ${input.messageId}`);
    const decided = decidedBy(rows, input, requestId);
    if (decided !== null) return decided;
  }

  const at = new Date(input.nowMs).toISOString();
  const event = createEvent({
    type: 'MessageHandled',
    shopId: input.shopId,
    source: input.source,
    nowMs: input.nowMs,
    id: newEventId(input.nowMs),
    data: { id: input.messageId, status: input.status, event_id: requestId, by: input.by, notices: [] },
  });
  // Cut the JSON where the script puts the notices (and the dropped copies after them): data's last field.
  const json = JSON.stringify(event);
  const head = json.slice(0, json.lastIndexOf('[]'));
  const record: HandlingRecord = { by: input.by, at, status: input.status, id: input.messageId };
  const notice = JSON.stringify({
    event_id: requestId,
    status: input.status,
    handled_by: input.by,
    handled_at: at,
  });
  const own = input.by.kind === 'device' ? input.messageId : '';
  let reply: Array<string | number>;
  try {
    reply = await runScript(
      deps.redis,
      'handle-7',
      [
        deps.keys.streamOfShop(input.shopId),
        deps.keys.handling(input.shopId),
        deps.keys.handlingOrder(input.shopId),
        deps.keys.inbox(input.shopId),
        deps.keys.inboxOrder(input.shopId),
        deps.keys.attempts(input.shopId),
        deps.keys.presence(input.shopId),
      ],
      [
        requestId,
        JSON.stringify(input.by),
        input.status,
        JSON.stringify(record),
        input.nowMs,
        HANDLING_RECORD_MS,
        head,
        notice,
        own,
        deps.keys.edgeChannelOfShop(input.shopId, ''),
        ...copies,
      ],
    );
  } catch (err) {
    throw asLogError(err);
  }
  if (reply[0] === 0) {
    noticesFiled.inc(Number(reply[2]));
    return {
      kind: 'handled',
      eventId: event.id,
      requestId,
      streamId: String(reply[1]),
      notices: Number(reply[2]),
      at,
    };
  }
  const first = JSON.parse(String(reply[1])) as HandlingRecord;
  return { kind: reply[0] === 1 ? 'repeat' : 'conflict', requestId, first };
}

/** Acks `handled` notices of one device (ids of its own copies); answers how many were pending. */
export async function ackNotices(
  redis: RedisClient,
  keys: Keys,
  shopId: string,
  clientId: string,
  copyIds: string[],
): Promise<number> {
  if (copyIds.length === 0) return 0;
  try {
    const reply = await runScript(
      redis,
      'ack-notices-3',
      [keys.inbox(shopId), keys.inboxOrder(shopId), keys.attempts(shopId)],
      [clientId, ...copyIds.map(noticeIdOf)],
    );
    noticesAcked.inc(Number(reply));
    return Number(reply);
  } catch (err) {
    throw asLogError(err);
  }
}
