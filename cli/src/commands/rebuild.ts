// `broker rebuild --into <database url>`: rebuilds the archive and the projections from the log's history into an
// empty database by running the persister's own batch projector over the history, shard by shard, in batches.
// It only reads Redis and DATABASE_URL; it writes only the target.
import type { Command } from 'commander';
import { type ConsumedEntry, type HistorySource, historySize, shardHistory } from '#eventlog';
import { Keys } from '#events';
import { batchProjector } from '#persister';
import { describePostgres, type Logger, type Pool } from '#runtime';
import {
  createPostgres,
  EXIT,
  EXIT_HELP,
  exitingTwoOnBadArguments,
  OperatorError,
  openPostgres,
  openRedis,
  runOperator,
  usageError,
} from './operator';
import { progressOf } from './progress';

/** Shards rebuilt at once: they are independent (a shop lives in one), and each holds one target connection. */
const PARALLEL_SHARDS = 4;

const EXAMPLES = `
Examples:
  $ broker rebuild --into postgres://postgres@127.0.0.1:5432/broker_rebuilt
  $ DATABASE_URL=postgres://postgres@127.0.0.1:5432/broker_rebuilt broker audit
  $ broker rebuild --into postgres://postgres@db2:5432/broker --force --batch 5000

The target database is created when missing and must be empty; --force empties it first (stop any persister
writing to it). The history is read from Redis and the archive in DATABASE_URL, which cannot be the target.
${EXIT_HELP}`;

interface RebuildOptions {
  into: string;
  force?: boolean;
  batch: string;
}

export function registerRebuild(program: Command): void {
  const command = program
    .command('rebuild')
    .description('rebuild the archive and the projections from the event log into an empty database')
    .requiredOption('--into <database_url>', 'the database to rebuild into (postgres://…)')
    .option('--force', 'empty a database that is not empty first (TRUNCATE the broker tables)')
    .option('--batch <n>', 'events per transaction', '1000')
    .addHelpText('after', EXAMPLES);
  exitingTwoOnBadArguments(command).action((options: RebuildOptions) =>
    runOperator('rebuild', async (session) => {
      const { config, log } = session;
      const into = parseTarget(options.into, config.databaseUrl);
      const batch = Number(options.batch);
      if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
        throw usageError('--batch takes an integer from 1 to 100000');
      }
      const redis = await openRedis(session, 'cli-rebuild');
      const db = await openPostgres(session, config.databaseUrl);
      const target = await createPostgres(session, into, PARALLEL_SHARDS + 1);
      await makeEmpty(target, into, options.force === true);

      const source: HistorySource = { redis, db, keys: new Keys(config.redis.prefix, config.shards) };
      const startedMs = Date.now();
      const total = await sum(source.keys.allShards().map((shard) => historySize(source, shard)));
      const progress = progressOf('rebuild', 'events', total, process.stderr.isTTY === true);
      const result = await rebuildInto(source, target, { batch, log, onProgress: progress.update });
      progress.stop(result.events);
      const seconds = (Date.now() - startedMs) / 1000;
      const invalid = result.invalid > 0 ? ` (${result.invalid} invalid entries skipped)` : '';
      process.stdout.write(
        `rebuild: ${result.events} events into ${describePostgres(into)} in ${seconds.toFixed(1)} s ` +
          `(${Math.round(result.events / Math.max(seconds, 0.001))} events/s)${invalid}\n` +
          `check it with: DATABASE_URL=${describePostgres(into)} broker audit\n`,
      );
      return EXIT.ok;
    }),
  );
}

export interface RebuildRun {
  batch: number;
  log: Logger;
  /** Called after each committed batch with the events rebuilt so far. */
  onProgress?(events: number): void;
}

/**
 * Runs the persister's batch projector over every shard's history into `target`: the same SQL, one transaction
 * per batch with its checkpoint, so the result is what the persister would have built and what audit expects.
 */
export async function rebuildInto(source: HistorySource, target: Pool, run: RebuildRun) {
  const project = batchProjector(target, run.log);
  let events = 0;
  let invalid = 0;
  const counted: HistorySource = {
    ...source,
    onInvalid: () => {
      invalid++;
    },
  };
  const queue = source.keys.allShards();
  async function worker(): Promise<void> {
    for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) {
      let entries: ConsumedEntry[] = [];
      for await (const { streamId, event } of shardHistory(counted, shard)) {
        entries.push({ streamId, event });
        if (entries.length < run.batch) continue;
        await project(shard, entries);
        events += entries.length;
        entries = [];
        run.onProgress?.(events);
      }
      if (entries.length > 0) {
        await project(shard, entries);
        events += entries.length;
        run.onProgress?.(events);
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL_SHARDS }, worker));
  return { events, invalid };
}

/** `--into`: a PostgreSQL URL that is not DATABASE_URL's database (the history's archive is read from there). */
function parseTarget(raw: string, sourceUrl: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--into takes a database URL such as postgres://user@host:5432/name (got "${raw}")`);
  }
  if (!['postgres:', 'postgresql:'].includes(url.protocol) || url.pathname.length < 2) {
    throw usageError(`--into takes a database URL such as postgres://user@host:5432/name (got "${raw}")`);
  }
  if (databaseOf(raw) === databaseOf(sourceUrl)) {
    throw usageError(
      '--into names the database in DATABASE_URL; rebuild reads the archive there, pick another',
    );
  }
  return raw;
}

function databaseOf(raw: string): string {
  const url = new URL(raw);
  return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
}

const TABLES = 'events, devices, connections, messages, projection_checkpoints';

async function makeEmpty(target: Pool, url: string, force: boolean): Promise<void> {
  const { rows } = await target.query<{ has_rows: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM devices) OR EXISTS (SELECT 1 FROM connections)
       OR EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM projection_checkpoints) AS has_rows`,
  );
  if (!rows[0]!.has_rows) return;
  if (!force) {
    throw new OperatorError(
      `${describePostgres(url)} is not empty; rebuild into an empty database, or add --force to empty it first`,
      EXIT.usage,
    );
  }
  await target.query(`TRUNCATE ${TABLES}`);
}

async function sum(counts: Array<Promise<number>>): Promise<number> {
  return (await Promise.all(counts)).reduce((a, b) => a + b, 0);
}
