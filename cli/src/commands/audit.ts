// `broker audit`: folds the log's history with the persister's own projection (evolve) up to what the persister
// has committed, and compares the result with the PostgreSQL projections, row by row and field by field.
// Read-only. Events after a shard's checkpoint are counted as not yet projected, not as differences.
import type { Command } from 'commander';
import { type HistorySource, historyShards, shardHistory } from '#eventlog';
import { compareStreamIds, Keys } from '#events';
import { emptyView, evolve, type ProjectionView, readCheckpoints, readProjection } from '#persister';
import { inTransaction, type Pool, type PoolClient } from '#runtime';
import {
  EXIT,
  EXIT_HELP,
  exitingTwoOnBadArguments,
  openPostgres,
  openRedis,
  parseShop,
  runOperator,
  usageError,
} from './operator';

const EXAMPLES = `
Examples:
  $ broker audit
  $ broker audit --shop shop-1
  $ DATABASE_URL=postgres://postgres@127.0.0.1:5432/rebuilt broker audit

Prints one line per difference (table, row, field, expected and found), then a summary line.
${EXIT_HELP}`;

export function registerAudit(program: Command): void {
  const command = program
    .command('audit')
    .description('compare the PostgreSQL projections with a fold of the event log; exit 1 on any divergence')
    .option('--shop <shop_id>', 'audit one shop only')
    .option('--max-differences <n>', 'print at most n differences (all are counted)', '100')
    .addHelpText('after', EXAMPLES);
  exitingTwoOnBadArguments(command).action((options: { shop?: string; maxDifferences: string }) =>
    runOperator('audit', async (session) => {
      const shopId = parseShop(options.shop);
      const maxShown = Number(options.maxDifferences);
      if (!Number.isInteger(maxShown) || maxShown < 0)
        throw usageError('--max-differences takes an integer ≥ 0');
      const redis = await openRedis(session, 'cli-audit');
      const db = await openPostgres(session, session.config.databaseUrl);
      const keys = new Keys(session.config.redis.prefix, session.config.shards);

      const committed = await readCommitted(db);
      const fold = await foldCommitted({ redis, db, keys }, committed.checkpoints, shopId);
      const found = shopId === undefined ? committed.found : onlyShop(committed.found, shopId);
      const { differences, compared } = diffProjections(fold.view, found);

      const out: string[] = differences.slice(0, maxShown).map(describeDifference);
      if (differences.length > maxShown) out.push(`… and ${differences.length - maxShown} more differences`);
      const scope = shopId === undefined ? '' : ` (shop ${shopId})`;
      const invalid = fold.invalid > 0 ? `, ${fold.invalid} invalid entries skipped` : '';
      out.push(
        `audit${scope}: ${fold.folded} events folded, ${compared} rows compared, ` +
          `${fold.notYetProjected} not yet projected${invalid}, ${plural(differences.length, 'difference')}`,
      );
      process.stdout.write(`${out.join('\n')}\n`);
      return differences.length === 0 ? EXIT.ok : EXIT.failed;
    }),
  );
}

/** The checkpoints and the tables in one snapshot, so rows committed meanwhile cannot pass for extra rows. */
async function readCommitted(db: Pool) {
  return inTransaction(db, async (client) => {
    await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const checkpoints = await readCheckpoints(client);
    const found = await readProjection(oneQueryAtATime(client));
    return { checkpoints, found };
  });
}

/**
 * readProjection sends its four reads at once; one client runs them in turn anyway, but pg warns that queueing
 * on a busy client is deprecated (refused from pg 9). This runs them one after another on the snapshot's client.
 */
function oneQueryAtATime(client: PoolClient): PoolClient {
  let previous: Promise<unknown> = Promise.resolve();
  const query = (text: string, values?: unknown[]) => {
    const next = previous.then(() => client.query(text, values));
    previous = next.catch(() => undefined); // the caller gets the failure; the chain only orders the calls
    return next;
  };
  // readProjection only calls query(text); the rest of the client is not needed for it.
  return { query } as unknown as PoolClient;
}

interface Fold {
  view: ProjectionView;
  folded: number;
  notYetProjected: number;
  invalid: number;
}

/** The history folded through `evolve`, per shard in log order, up to each shard's checkpoint. */
async function foldCommitted(
  source: HistorySource,
  checkpoints: Map<number, string>,
  shopId: string | undefined,
): Promise<Fold> {
  const fold: Fold = { view: emptyView(), folded: 0, notYetProjected: 0, invalid: 0 };
  const counted = {
    ...source,
    onInvalid: () => {
      fold.invalid++;
    },
  };
  const filter = shopId === undefined ? {} : { shopId };
  for (const shard of historyShards(source.keys, filter)) {
    const checkpoint = checkpoints.get(shard) ?? '0-0';
    for await (const { streamId, event } of shardHistory(counted, shard, filter)) {
      if (compareStreamIds(streamId, checkpoint) > 0) {
        fold.notYetProjected++;
        continue;
      }
      evolve(fold.view, event, { shard, streamId });
      fold.folded++;
    }
  }
  return fold;
}

function onlyShop(view: ProjectionView, shopId: string): ProjectionView {
  const keep = <T extends { shop_id: string }>(rows: Map<string, T>) =>
    new Map([...rows].filter(([, row]) => row.shop_id === shopId));
  return {
    events: keep(view.events),
    devices: keep(view.devices),
    connections: keep(view.connections),
    messages: keep(view.messages),
    positions: view.positions,
  };
}

export type Table = 'events' | 'devices' | 'connections' | 'messages';

export type Difference =
  | { table: Table; key: string; kind: 'missing' | 'unexpected' }
  | { table: Table; key: string; kind: 'field'; field: string; expected: unknown; found: unknown };

const TABLES: readonly Table[] = ['events', 'devices', 'connections', 'messages'];

/**
 * ◇ Every way `found` differs from `expected`: rows missing, rows the log does not explain, and fields that differ
 * (down to the key inside a JSON field). Only the fields the projection defines are compared; JSON values compare
 * by value, not key order (jsonb reorders keys).
 */
export function diffProjections(expected: ProjectionView, found: ProjectionView) {
  const differences: Difference[] = [];
  let compared = 0;
  for (const table of TABLES) {
    const want: Map<string, object> = expected[table];
    const have: Map<string, object> = found[table];
    for (const key of [...want.keys()].sort()) {
      compared++;
      const row = have.get(key);
      if (row === undefined) {
        differences.push({ table, key, kind: 'missing' });
        continue;
      }
      const wanted = want.get(key)! as Record<string, unknown>;
      const got = row as Record<string, unknown>;
      for (const field of Object.keys(wanted)) {
        for (const [path, expectedValue, foundValue] of fieldDifferences(field, wanted[field], got[field])) {
          differences.push({
            table,
            key,
            kind: 'field',
            field: path,
            expected: expectedValue,
            found: foundValue,
          });
        }
      }
    }
    for (const key of [...have.keys()].sort()) {
      if (want.has(key)) continue;
      compared++;
      differences.push({ table, key, kind: 'unexpected' });
    }
  }
  return { differences, compared };
}

/** Where two values differ: inside JSON objects, down to the keys that differ (`data.status`), not the whole object. */
function fieldDifferences(path: string, a: unknown, b: unknown): Array<[string, unknown, unknown]> {
  if (isSameValue(a, b)) return [];
  if (!isPlainObject(a) || !isPlainObject(b)) return [[path, a, b]];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((key) => fieldDifferences(`${path}.${key}`, a[key], b[key]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => isSameValue(item, b[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && isSameValue(left[key], right[key]));
}

const ROW_NAMES: Record<Table, string> = {
  events: 'event',
  devices: 'device',
  connections: 'connection',
  messages: 'message',
};

export function describeDifference(d: Difference): string {
  const where = `${d.table}: ${ROW_NAMES[d.table]} ${d.key}`;
  switch (d.kind) {
    case 'missing':
      return `${where}: missing (the log up to the checkpoint has it)`;
    case 'unexpected':
      return `${where}: unexpected (no event up to the checkpoint explains it)`;
    case 'field':
      return `${where}: ${d.field}: expected ${shown(d.expected)}, found ${shown(d.found)}`;
    default: {
      const never: never = d;
      return JSON.stringify(never);
    }
  }
}

function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
