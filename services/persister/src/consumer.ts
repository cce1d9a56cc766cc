// One batch of a shard: move the checkpoint to the batch's end, skip what it covered before, project the rest and
// write the rows, all in one transaction. ShardConsumer acknowledges the entries (XACK) after this resolves, so a
// crash between COMMIT and XACK redelivers a batch that the checkpoint then skips.

import type { ConsumedEntry } from '#eventlog';
import { compareStreamIds, parseStreamId } from '#events';
import { counter, histogram, inTransaction, type Logger, type Pool } from '#runtime';
import { project, type RowChange } from './projection';
import { moveCheckpoint, writeChanges } from './store';

const batchSeconds = histogram(
  'broker_projection_batch_seconds',
  'Time to project and commit one batch',
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
);
const alreadyProjected = counter(
  'broker_projection_redelivered_total',
  'Events skipped because their shard checkpoint already covered them (redelivered after a takeover)',
  ['shard'],
);

export type BatchHandler = (shard: number, entries: ConsumedEntry[]) => Promise<void>;

/** The persister's handler for ShardConsumer. Throws on failure; ShardConsumer retries or isolates the batch. */
export function batchProjector(pool: Pool, log: Logger): BatchHandler {
  return async (shard, entries) => {
    const stopTimer = batchSeconds.startTimer();
    const skipped = await inTransaction(pool, async (db) => {
      const last = parseStreamId(entries[entries.length - 1]!.streamId);
      const checkpoint = await moveCheckpoint(db, shard, last);
      let first = 0;
      while (first < entries.length && compareStreamIds(entries[first]!.streamId, checkpoint) <= 0) first++;
      if (first === entries.length) return first;
      const changes: RowChange[] = [];
      for (let i = first; i < entries.length; i++) {
        const { event, streamId } = entries[i]!;
        for (const change of project(event, { shard, streamId })) changes.push(change);
      }
      await writeChanges(db, changes);
      return first;
    });
    stopTimer();
    if (skipped > 0) {
      alreadyProjected.inc({ shard: String(shard) }, skipped);
      log.info(
        { shard, skipped, event_id: entries[0]!.event.id },
        'redelivered events skipped: already projected',
      );
    }
  };
}
