// The fault suite's one judge: from what the load recorded and what the log and PostgreSQL hold, it proves that
// nothing acknowledged was lost and nothing was doubled (SPEC §5). It waits (bounded) for the broker to settle
// (every message acked, the projections caught up), then counts, prints the counts and lists every violation.
import { type BrokerEvent, type EventOf, messageIdOf } from '#events';
import { connectPostgres } from '#runtime';
import { readLog, type TestContext, waitFor } from '#test-support';
import { deviceKey, type Recording } from './load';

export interface Counts {
  /** Notifies the load sent (socket and HTTP). */
  sent: number;
  /** Of those, answered with success (code 0 / 202). */
  acknowledged: number;
  /** Answered with a final refusal (never 503: the client and the HTTP loop retry those). */
  refused: number;
  /** No final answer (timeout, client closed): may or may not be recorded, at most once. */
  unknown: number;
  /** NotifyRequested events of the load's senders in the log. */
  logged: number;
  /** Messages the logged notifies call for (one per recipient main). */
  expected: number;
  /** Message rows in PostgreSQL for the load's shops. */
  stored: number;
  /** Message ids covered by MessageDelivered. */
  delivered: number;
  /** Message ids the main devices were handed. */
  received: number;
  /** Undelivered messages left in the shops' inboxes in Redis. */
  inboxLeft: number;
  /** (sender, req_id) pairs recorded more than once. */
  duplicates: number;
  /** DeliveryFailed events of the load's shops (the retry budget ran out; the message stays pending). */
  deliveryFailed: number;
}

export interface CheckResult {
  counts: Counts;
  /** Each broken guarantee, in words; empty when everything holds. */
  violations: string[];
}

export interface CheckOptions {
  /** How long the broker may take to settle after the load stopped. */
  settleMs?: number;
  /** Printed with the counts. */
  label: string;
}

type Notify = EventOf<'NotifyRequested'>;

interface Observed {
  notifies: Notify[];
  deliveredIds: string[];
  failed: number;
  rows: Array<{ id: string; event_id: string; to_client_id: string; state: string }>;
  inboxLeft: number;
}

/** Waits for the broker to settle, then checks every guarantee over the recording; prints the counts. */
export async function checkNothingLost(
  ctx: TestContext,
  recording: Recording,
  options: CheckOptions,
): Promise<CheckResult> {
  const pool = await connectPostgres(ctx.databaseUrl, ctx.log, { max: 2, applySchema: false });
  try {
    const settleFrom = Date.now();
    let observed = await observe(ctx, recording, pool);
    let unsettled: string | undefined;
    try {
      await waitFor(
        async () => {
          observed = await observe(ctx, recording, pool);
          return isSettled(observed, recording);
        },
        { timeoutMs: options.settleMs ?? 30_000, intervalMs: 500, what: 'the broker to settle' },
      );
    } catch (err) {
      // Not settled in time: reported as a violation, with the counts saying what is missing.
      unsettled = (err as Error).message;
    }
    const settledInMs = Date.now() - settleFrom;
    const result = judge(recording, observed);
    if (unsettled) {
      result.violations.unshift(unsettled, ...(await whyUndelivered(ctx, observed)));
    }
    const c = result.counts;
    console.log(
      `[fault] ${options.label}: sent ${c.sent}, acknowledged ${c.acknowledged}, refused ${c.refused}, ` +
        `unknown ${c.unknown}; logged ${c.logged}, duplicates ${c.duplicates}; messages expected ${c.expected}, ` +
        `stored ${c.stored}, delivered ${c.delivered}, received ${c.received}, inbox left ${c.inboxLeft}, ` +
        `delivery failed ${c.deliveryFailed}; settled in ${settledInMs} ms; violations ${result.violations.length}`,
    );
    for (const violation of result.violations.slice(0, 20)) console.log(`[fault]   ✗ ${violation}`);
    return result;
  } finally {
    await pool.end();
  }
}

async function observe(
  ctx: TestContext,
  recording: Recording,
  pool: Awaited<ReturnType<typeof connectPostgres>>,
): Promise<Observed> {
  const shops = new Set(recording.shops);
  const events = (await readLog(ctx)).filter((e) => shops.has(e.shop_id));
  const notifies = events.filter(
    (e): e is Notify => e.type === 'NotifyRequested' && e.data.audience === 'mains',
  );
  const deliveredIds = events.flatMap((e: BrokerEvent) => (e.type === 'MessageDelivered' ? e.data.ids : []));
  const failed = events.filter((e) => e.type === 'DeliveryFailed').length;
  const { rows } = await pool.query<Observed['rows'][number]>(
    'SELECT id, event_id, to_client_id, state FROM messages WHERE shop_id = ANY($1::text[])',
    [recording.shops],
  );
  const lengths = await Promise.all(recording.shops.map((shop) => ctx.redis.hlen(ctx.keys.inbox(shop))));
  return { notifies, deliveredIds, failed, rows, inboxLeft: lengths.reduce((a, b) => a + b, 0) };
}

/** For the first undelivered messages: their push count and where their device is, as Redis has it. */
async function whyUndelivered(ctx: TestContext, observed: Observed): Promise<string[]> {
  const delivered = new Set(observed.deliveredIds);
  const missing = observed.notifies
    .flatMap((n) => n.data.recipients.map((r) => ({ shop: n.shop_id, client: r, id: messageIdOf(n.id, r) })))
    .filter((m) => !delivered.has(m.id))
    .slice(0, 10);
  return Promise.all(
    missing.map(async ({ shop, client, id }) => {
      const [attempts, presence] = await Promise.all([
        ctx.redis.hget(ctx.keys.attempts(shop), id),
        ctx.redis.hget(ctx.keys.presence(shop), client),
      ]);
      return `undelivered ${id}: pushed ${attempts ?? 0} times; ${shop}/${client} presence ${presence ?? 'none'}`;
    }),
  );
}

function expectedIds(observed: Observed): string[] {
  return observed.notifies.flatMap((n) => n.data.recipients.map((r) => messageIdOf(n.id, r)));
}

function isSettled(observed: Observed, recording: Recording): boolean {
  const expected = expectedIds(observed);
  const delivered = new Set(observed.deliveredIds);
  const rows = new Map(observed.rows.map((row) => [row.id, row]));
  return (
    recording.notifies.every((r) => r.outcome !== 'pending') &&
    observed.inboxLeft === 0 &&
    expected.every((id) => delivered.has(id) && rows.get(id)?.state !== 'pending' && rows.has(id))
  );
}

function judge(recording: Recording, observed: Observed): CheckResult {
  const violations: string[] = [];
  const senderKey = (shop: string, from: string | null, reqId: string) => `${shop}|${from ?? ''}|${reqId}`;

  // The log's notifies per (shop, sender, req_id): more than one is a duplicate a re-sent notify created.
  const logged = new Map<string, Notify[]>();
  for (const n of observed.notifies) {
    const key = senderKey(n.shop_id, n.data.from_client_id, n.data.req_id);
    logged.set(key, [...(logged.get(key) ?? []), n]);
  }
  let duplicates = 0;
  for (const [key, list] of logged) {
    if (list.length === 1) continue;
    duplicates++;
    violations.push(`${key} recorded ${list.length} times (${list.map((n) => n.id).join(', ')})`);
  }

  // Every acknowledged notify is in the log exactly once, under the event id its sender was told.
  for (const record of recording.notifies) {
    const found = logged.get(senderKey(record.shop, record.from, record.req_id)) ?? [];
    const told = new Set(record.replies.flatMap((r) => (r.event_id ? [r.event_id] : [])));
    if (record.outcome === 'ok') {
      if (found.length === 0)
        violations.push(`acknowledged ${record.via} notify ${record.req_id} is not in the log`);
      else if (!found.some((n) => n.id === record.event_id))
        violations.push(`${record.req_id} acknowledged as ${record.event_id}, logged as ${found[0]!.id}`);
      if (told.size > 1)
        violations.push(`${record.req_id} answered with different event ids: ${[...told].join(', ')}`);
    } else if (record.outcome === 'refused') {
      // The load only sends valid notifies to shops with mains: a refusal is wrong, a recorded one doubly so.
      violations.push(
        `${record.via} notify ${record.req_id} was refused (${record.error})` +
          (found.length > 0 ? ` but recorded as ${found[0]!.id}` : ''),
      );
    } else {
      violations.push(
        `${record.via} notify ${record.req_id} got no final answer (${record.error ?? record.outcome})`,
      );
    }
  }

  // Each logged notify names the shop's mains; each of their messages is stored once, delivered and received.
  const rows = new Map(observed.rows.map((row) => [row.id, row]));
  const delivered = new Map<string, number>();
  for (const id of observed.deliveredIds) delivered.set(id, (delivered.get(id) ?? 0) + 1);
  const expected = expectedIds(observed);
  const expectedSet = new Set(expected);
  let received = 0;
  for (const n of observed.notifies) {
    const mains = [...(recording.mainsOf.get(n.shop_id) ?? [])].sort();
    if (JSON.stringify([...n.data.recipients].sort()) !== JSON.stringify(mains))
      violations.push(
        `${n.id} names recipients ${n.data.recipients.join(',')}, the shop's mains are ${mains.join(',')}`,
      );
    for (const recipient of n.data.recipients) {
      const id = messageIdOf(n.id, recipient);
      const row = rows.get(id);
      if (!row) violations.push(`message ${id} has no row`);
      else if (row.state === 'pending') violations.push(`message ${id} is still pending in PostgreSQL`);
      if (!delivered.has(id)) violations.push(`message ${id} was never acked (no MessageDelivered)`);
      if (recording.received.get(deviceKey(n.shop_id, recipient))?.has(id)) received++;
      else violations.push(`message ${id} never reached ${n.shop_id}/${recipient}`);
    }
  }
  for (const row of observed.rows) {
    if (!expectedSet.has(row.id)) violations.push(`row ${row.id} matches no logged notify`);
  }
  for (const [id, times] of delivered) {
    if (times > 1) violations.push(`message ${id} recorded delivered ${times} times`);
  }
  if (observed.inboxLeft > 0) violations.push(`${observed.inboxLeft} messages left in the shops' inboxes`);

  const count = (outcome: string) => recording.notifies.filter((r) => r.outcome === outcome).length;
  return {
    counts: {
      sent: recording.notifies.length,
      acknowledged: count('ok'),
      refused: count('refused'),
      unknown: count('unknown'),
      logged: observed.notifies.length,
      expected: expected.length,
      stored: observed.rows.length,
      delivered: expected.filter((id) => delivered.has(id)).length,
      received,
      inboxLeft: observed.inboxLeft,
      duplicates,
      deliveryFailed: observed.failed,
    },
    violations,
  };
}
