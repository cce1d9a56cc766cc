// One batch of a shard: move the checkpoint to the batch's end, skip what it covered before, project the rest and
// write the rows, all in one transaction. ShardConsumer acknowledges the entries (XACK) after this resolves, so a
// crash between COMMIT and XACK redelivers a batch that the checkpoint then skips.
//
// The persister group-commits: it reads every shard it holds at once, at most every PERSISTER_LINGER_MS, and the
// batches of a read are written in one transaction, each shard's checkpoint moved in it. Below saturation a shard's
// batch holds one or two events, so this turns a commit per event into a commit per read interval.

import type { ConsumedEntry } from '#eventlog';
import { compareStreamIds, parseStreamId } from '#events';
import {
  Coalescer,
  counter,
  histogram,
  inTransaction,
  type Logger,
  type Pool,
  togetherOrEachAlone,
} from '#runtime';
import { project, type RowChange } from './projection';
import { moveCheckpoints, writeChanges } from './store';

const batchSeconds = histogram(
  'broker_projection_batch_seconds',
  'Time to project and commit one transaction of batches',
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
);
const alreadyProjected = counter(
  'broker_projection_redelivered_total',
  'Events skipped because their shard checkpoint already covered them (redelivered after a takeover)',
  ['shard'],
);

export type BatchHandler = (shard: number, entries: ConsumedEntry[]) => Promise<void>;

export interface ShardBatch {
  shard: number;
  entries: ConsumedEntry[];
}

/** Projects one shard's batch in its own transaction (`broker rebuild`, tests). Throws on failure. */
export function batchProjector(pool: Pool, log: Logger): BatchHandler {
  return (shard, entries) => projectBatches(pool, log, [{ shard, entries }]);
}

/**
 * The persister's handler for ShardConsumer: the batches of one read (every shard it holds, read at most every
 * PERSISTER_LINGER_MS) group-committed. Should a transaction of several batches fail, each is projected alone, so a
 * poison event fails only its own shard's batch (which ShardConsumer then retries or isolates), never the others'.
 */
export function groupCommittedProjector(pool: Pool, log: Logger): BatchHandler {
  const coalescer = new Coalescer<ShardBatch>(
    togetherOrEachAlone((batches) => projectBatches(pool, log, batches)),
  );
  return (shard, entries) => coalescer.submit({ shard, entries });
}

/**
 * Projects batches in one transaction. Checkpoints are locked in shard order, so two persisters holding batches
 * of the same shards during a lease takeover wait for each other instead of deadlocking.
 */
export async function projectBatches(pool: Pool, log: Logger, batches: readonly ShardBatch[]): Promise<void> {
  const stopTimer = batchSeconds.startTimer();
  const inShardOrder = [...batches].filter((b) => b.entries.length > 0).sort((a, b) => a.shard - b.shard);
  const skips = await inTransaction(pool, async (db) => {
    const changes: RowChange[] = [];
    const skipped: Array<{ shard: number; count: number; eventId: string }> = [];
    const checkpoints = await moveCheckpoints(
      db,
      inShardOrder.map(({ shard, entries }) => ({
        shard,
        last: parseStreamId(entries[entries.length - 1]!.streamId),
      })),
    );
    for (const { shard, entries } of inShardOrder) {
      const checkpoint = checkpoints.get(shard)!;
      let first = 0;
      while (first < entries.length && compareStreamIds(entries[first]!.streamId, checkpoint) <= 0) first++;
      if (first > 0) skipped.push({ shard, count: first, eventId: entries[0]!.event.id });
      for (let i = first; i < entries.length; i++) {
        const { event, streamId } = entries[i]!;
        for (const change of project(event, { shard, streamId })) changes.push(change);
      }
    }
    if (changes.length > 0) await writeChanges(db, changes);
    return skipped;
  });
  stopTimer();
  for (const { shard, count, eventId } of skips) {
    alreadyProjected.inc({ shard: String(shard) }, count);
    log.info({ shard, skipped: count, event_id: eventId }, 'redelivered events skipped: already projected');
  }
}
