// `broker audit`: folds the log's history with the persister's own projection (evolve) up to what the persister
// has committed, and compares the result with the PostgreSQL projections, row by row and field by field, one shop
// at a time (audit-by-shop.ts). Read-only. Events after a shard's checkpoint are counted as not yet projected,
// not as differences.
import type { Command } from 'commander';
import { Keys } from '#events';
import { auditByShop } from './audit-by-shop';
import { describeDifference } from './audit-diff';
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
import { NO_PROGRESS, type Progress, progressBar } from './progress';

const EXAMPLES = `
Examples:
  $ broker audit
  $ broker audit --shop shop-1
  $ DATABASE_URL=postgres://postgres@127.0.0.1:5432/rebuilt broker audit

Prints one line per difference (table, row, field, expected and found), then a summary line. Shops are audited
one at a time (a progress bar on a terminal): memory holds one shop's events and rows, and one shard's live tail.
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

      // The lines shown are kept (at most maxShown) and printed after the progress bar is gone.
      const shown: string[] = [];
      let progress: Progress = NO_PROGRESS;
      let audited = 0;
      const totals = await auditByShop(
        { redis, db, keys },
        {
          shopId,
          onShops: (count) => {
            if (process.stderr.isTTY) progress = progressBar('audit', 'shops', count);
          },
          onShop: ({ differences }) => {
            for (const d of differences) if (shown.length < maxShown) shown.push(describeDifference(d));
            progress.update(++audited);
          },
        },
      );
      progress.stop(audited);

      const out = shown;
      if (totals.differences > maxShown) out.push(`… and ${totals.differences - maxShown} more differences`);
      const scope = shopId === undefined ? '' : ` (shop ${shopId})`;
      const invalid = totals.invalid > 0 ? `, ${totals.invalid} invalid entries skipped` : '';
      out.push(
        `audit${scope}: ${totals.folded} events folded, ${totals.compared} rows compared, ` +
          `${totals.notYetProjected} not yet projected${invalid}, ${plural(totals.differences, 'difference')}`,
      );
      process.stdout.write(`${out.join('\n')}\n`);
      return totals.differences === 0 ? EXIT.ok : EXIT.failed;
    }),
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
