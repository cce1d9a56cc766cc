import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEntry } from '#eventlog';
import { type BrokerEvent, createEvent, type EventOf, messageIdOf } from '#events';
import { batchProjector, emptyView, evolve, groupCommittedProjector, type ProjectionView } from '#persister';
import { connectPostgres, type Pool, registry } from '#runtime';
import { createTestContext, eventsFor, type TestContext } from '#test-support';
import { busyShopOps, fixedEventId, shopLog, shopOpsArbitrary } from '../../support/shop-log';
import { projectedTables, tablesOf } from './harness';

// store.ts writes a batch kind by kind, in one statement whose parts cannot see one another's rows, and merges
// changes to one row; projection.ts applies them one at a time. Both must give the same rows for any log, any
// batch split, and any events processed again later, alone or in a batch with events new to the rows.
let ctx: TestContext;
let pool: Pool;

beforeAll(async () => {
  ctx = await createTestContext();
  pool = await connectPostgres(ctx.databaseUrl, ctx.log);
});
afterAll(async () => {
  await pool.end();
  await ctx.cleanup();
});

async function resetTables(): Promise<void> {
  await pool.query(
    'DELETE FROM events; DELETE FROM devices; DELETE FROM connections; DELETE FROM messages; DELETE FROM projection_checkpoints',
  );
}

describe('when a batch holds several changes to the same rows', () => {
  it('writes the same rows as applying each event in turn, whatever the batch split and replays', async () => {
    const project = batchProjector(pool, ctx.log);
    await fc.assert(
      fc.asyncProperty(
        shopOpsArbitrary(),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 10 }),
        fc.record({ cut: fc.nat(200), overlap: fc.nat(12) }),
        fc.array(fc.nat(200), { maxLength: 8 }),
        async (ops, batchSizes, rewind, replays) => {
          await resetTables();
          const events = shopLog(ops, { shopId: 'shop-f' });
          const entries: ConsumedEntry[] = events.map((event, i) => ({ streamId: `${1000 + i}-0`, event }));
          const expected = emptyView();
          const projectInBatches = async (from: number, to: number) => {
            for (let i = from, b = 0; i < to; b++) {
              const batch = entries.slice(i, Math.min(to, i + batchSizes[b % batchSizes.length]!));
              await project(0, batch);
              fold(expected, batch);
              i += batch.length;
            }
          };

          // The log up to a cut, then again from before the cut without the checkpoint: the batches around the
          // cut create rows that exist already and change them further.
          const cut = entries.length === 0 ? 0 : rewind.cut % entries.length;
          await projectInBatches(0, cut);
          await pool.query('DELETE FROM projection_checkpoints');
          await projectInBatches(Math.max(0, cut - rewind.overlap), entries.length);
          // Replays out of order, past the checkpoint: only the SQL guards keep the rows as they are.
          for (const r of replays) {
            if (entries.length === 0) break;
            const entry = entries[r % entries.length]!;
            await pool.query('DELETE FROM projection_checkpoints');
            await project(0, [entry]);
            fold(expected, [entry]);
          }
          expect(await projectedTables(pool)).toEqual(tablesOf(expected));
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});

describe('when one batch creates a row and changes it', () => {
  const { registered, loggedIn, closed, failed, handled, ...shop } = eventsFor('shop-b');
  const notify = (offsetMs: number, recipients: string[], table_id: string | number | null) =>
    shop.notify(offsetMs, recipients, {
      table_id,
      data: { dish: '饺子 "dumplings" \\ \n', qty: 2.5, extras: [null, true, { a: [] }] },
      user_info: { name: 'Li', seat: '12' },
    });
  const delivered = (offsetMs: number, client_id: string, ids: string[], attempts: number) =>
    shop.delivered(offsetMs, client_id, ids, Object.fromEntries(ids.map((id) => [id, attempts])));

  /** Notifies acked, failed, handled and acked late, and a connection opened and closed, in one short log. */
  function busyMinute(): BrokerEvent[] {
    const first = notify(5, ['pos-1', 'pos-2'], '12');
    const second = notify(6, ['pos-1'], 12);
    const [a1, a2, b1] = [
      messageIdOf(first.id, 'pos-1'),
      messageIdOf(first.id, 'pos-2'),
      messageIdOf(second.id, 'pos-1'),
    ];
    return [
      registered(1, 'pos-1', 'main'),
      registered(2, 'pos-2', 'main'),
      registered(3, 'waiter', 'sub'),
      loggedIn(4, 'pos-1', 'c1'),
      first,
      second,
      delivered(7, 'pos-1', [a1, b1], 1),
      delivered(8, 'pos-1', [a1], 2), // a late second ack: the first stays
      failed(9, a2, 5),
      handled(10, a1, 3),
      handled(11, b1, 4),
      delivered(12, 'pos-2', [a2], 6), // acked after its retries ran out
      failed(13, a2, 4), // an older failure report: failed_at moves forward, attempts do not move back
      handled(14, a1, 5), // the latest handle wins
      closed(15, 'pos-1', 'c1'),
      loggedIn(16, 'pos-1', 'c2'),
      notify(17, ['pos-2'], null),
    ];
  }

  it('writes the rows applying each event in turn gives', async () => {
    await resetTables();
    const entries = entriesOf(busyMinute());
    await batchProjector(pool, ctx.log)(0, entries);

    const expected = fold(emptyView(), entries);
    expect(await projectedTables(pool)).toEqual(tablesOf(expected));
    const stateOf = (id: string) => expected.messages.get(id)?.state;
    expect([...expected.messages.keys()].map(stateOf)).toEqual([
      'handled',
      'delivered',
      'handled',
      'pending',
    ]);
    expect(expected.connections.get('c1')?.closed_at).not.toBeNull();
  });

  it('keeps table_id a string, a number or null exactly as sent', async () => {
    await resetTables();
    await batchProjector(pool, ctx.log)(0, entriesOf(busyMinute()));
    const result = await pool.query<{ table_id: unknown; kind: string }>(
      'SELECT DISTINCT table_id, jsonb_typeof(table_id) AS kind FROM messages ORDER BY kind',
    );
    expect(result.rows).toEqual([
      { table_id: 12, kind: 'number' },
      { table_id: '12', kind: 'string' },
      { table_id: null, kind: null },
    ]);
  });

  it('writes the same rows when the rows exist already, created by an earlier batch', async () => {
    await resetTables();
    const entries = entriesOf(busyMinute());
    const project = batchProjector(pool, ctx.log);
    await project(0, entries.slice(0, 6));
    await pool.query('DELETE FROM projection_checkpoints');
    await project(0, entries);

    expect(await projectedTables(pool)).toEqual(tablesOf(fold(emptyView(), entries)));
  });
});

describe('when batches of several shards are group-committed', () => {
  it('writes, in one transaction, the rows each batch writes alone, and moves each shard checkpoint', async () => {
    await resetTables();
    const shops = ['shop-g1', 'shop-g2', 'shop-g3'];
    const logs = shops.map((shopId, s) => entriesOf(shopLog(busyShopOpsOf(s), { shopId })));
    const project = groupCommittedProjector(pool, ctx.log);
    const commitsBefore = await commitCount();
    await Promise.all(logs.map((entries, shard) => project(shard, entries)));
    const commits = (await commitCount()) - commitsBefore;

    const expected = emptyView();
    logs.forEach((entries, shard) => {
      for (const { streamId, event } of entries) evolve(expected, event, { shard, streamId });
    });
    expect(await projectedTables(pool)).toEqual(tablesOf(expected));
    const { rows } = await pool.query<{ shard: number; stream_ms: string }>(
      'SELECT shard, stream_ms FROM projection_checkpoints ORDER BY shard',
    );
    expect(rows).toEqual(
      logs.map((entries, shard) => ({ shard, stream_ms: entries.at(-1)!.streamId.split('-')[0] })),
    );
    expect(commits).toBe(1); // together, not one transaction per shard
  });

  it('fails only the batch that cannot be projected, and writes the others', async () => {
    await resetTables();
    const good = entriesOf(shopLog(busyShopOpsOf(1), { shopId: 'shop-good' }));
    const notify = good.find(
      (e): e is ConsumedEntry & { event: EventOf<'NotifyRequested'> } => e.event.type === 'NotifyRequested',
    )!;
    // PostgreSQL's jsonb refuses the NUL character that JSON (and so the event schema) allows.
    const poison = entriesOf([
      createEvent({
        type: 'NotifyRequested',
        shopId: 'shop-poison',
        source: 'edge:e1',
        id: fixedEventId(Date.UTC(2025, 3, 1), 1),
        nowMs: Date.UTC(2025, 3, 1),
        data: { ...notify.event.data, req_id: 'poison', data: { note: 'no\u0000te' } },
      }),
    ]);
    const project = groupCommittedProjector(pool, ctx.log);
    const outcomes = await Promise.allSettled([project(1, good), project(2, poison)]);

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected']);
    expect(await projectedTables(pool)).toEqual(tablesOf(fold(emptyView(), good, 1)));
  });
});

/** Transactions the projector ran so far (its batch histogram counts one per transaction). */
async function commitCount(): Promise<number> {
  const metric = await registry.getSingleMetric('broker_projection_batch_seconds')?.get();
  // Histogram values carry their series name beside the labels.
  const values = (metric?.values ?? []) as Array<{ metricName?: string; value: number }>;
  return values.find((v) => v.metricName === 'broker_projection_batch_seconds_count')?.value ?? 0;
}

function busyShopOpsOf(seed: number) {
  return busyShopOps(4 + seed);
}

function entriesOf(events: BrokerEvent[]): ConsumedEntry[] {
  return events.map((event, i) => ({ streamId: `${1000 + i}-0`, event }));
}

function fold(view: ProjectionView, entries: ConsumedEntry[], shard = 0): ProjectionView {
  for (const { streamId, event } of entries) evolve(view, event, { shard, streamId });
  return view;
}
