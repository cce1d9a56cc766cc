// `broker replay`: prints the log's history (archive and live streams as one) filtered by shop, type, time or id
// range; one envelope per line as JSON (the default when piped) or a table (the default on a terminal).
// Streams: a page at a time, and it waits for stdout to drain, so a year of events never sits in memory.
import type { Command } from 'commander';
import { type HistoryFilter, history } from '#eventlog';
import { type BrokerEvent, EVENT_TYPES, type EventType, Keys } from '#events';
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

export interface ReplayOptions {
  shop?: string;
  type?: string[];
  since?: string;
  until?: string;
  from?: string;
  to?: string;
  format?: string;
}

export type ReplayFormat = 'json' | 'table';

const EXAMPLES = `
Examples:
  $ broker replay > log.jsonl                              every event, JSON lines
  $ broker replay --shop shop-1 --type NotifyRequested,MessageDelivered
  $ broker replay --since 2025-03-01T00:00:00Z --until 2025-03-02T00:00:00Z --format table
  $ broker replay --from 01JNX4Q3R0000000000000000 --to 01JNX4Z0000000000000000000 | jq .type

One shop's events come in log order; several shops are merged by time (at), then event id.
--since is inclusive and --until exclusive; --from and --to are inclusive.
${EXIT_HELP}`;

export function registerReplay(program: Command): void {
  const command = program
    .command('replay')
    .description('print the event log (archive and live streams as one history), filtered')
    .option('--shop <shop_id>', "only this shop's events")
    .option(
      '--type <types>',
      `event types, repeatable or comma-separated (${EVENT_TYPES.join(', ')})`,
      collect,
    )
    .option('--since <time>', 'events at or after this ISO 8601 time')
    .option('--until <time>', 'events before this ISO 8601 time')
    .option('--from <event_id>', 'events with this id or a later one')
    .option('--to <event_id>', 'events with this id or an earlier one')
    .option(
      '--format <format>',
      'json (one envelope per line) or table; default: table on a terminal, else json',
    )
    .addHelpText('after', EXAMPLES);
  exitingTwoOnBadArguments(command).action((options: ReplayOptions) =>
    runOperator('replay', async (session) => {
      const filter = parseFilter(options);
      const format = parseFormat(options.format, process.stdout.isTTY === true);
      const redis = await openRedis(session, 'cli-replay');
      const db = await openPostgres(session, session.config.databaseUrl);
      const keys = new Keys(session.config.redis.prefix, session.config.shards);
      let invalid = 0;
      const entries = history(
        {
          redis,
          db,
          keys,
          onInvalid: (problem) => {
            invalid++;
            session.log.warn(problem, 'invalid entry skipped');
          },
        },
        filter,
      );
      const events = (async function* () {
        for await (const entry of entries) yield entry.event;
      })();
      await writeChunks(process.stdout, format === 'json' ? jsonLines(events) : tableLines(events));
      if (invalid > 0) session.log.warn({ invalid }, 'entries that failed validation were skipped');
      return EXIT.ok;
    }),
  );
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((part) => part.trim())];
}

const EVENT_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** The command line's filter, checked: a bad value is a usage error naming the option. */
export function parseFilter(options: ReplayOptions): HistoryFilter {
  const filter: HistoryFilter = {};
  const shopId = parseShop(options.shop);
  if (shopId !== undefined) filter.shopId = shopId;
  if (options.type && options.type.length > 0) filter.types = options.type.map(parseType);
  if (options.since !== undefined) filter.since = parseTime('--since', options.since);
  if (options.until !== undefined) filter.until = parseTime('--until', options.until);
  if (filter.since && filter.until && filter.since >= filter.until) {
    throw usageError('--since must be before --until');
  }
  if (options.from !== undefined) filter.fromId = parseEventId('--from', options.from);
  if (options.to !== undefined) filter.toId = parseEventId('--to', options.to);
  if (filter.fromId && filter.toId && filter.fromId > filter.toId) {
    throw usageError('--from must not be after --to');
  }
  return filter;
}

function parseType(raw: string): EventType {
  const type = EVENT_TYPES.find((known) => known.toLowerCase() === raw.toLowerCase());
  if (!type) throw usageError(`--type: unknown event type "${raw}" (known: ${EVENT_TYPES.join(', ')})`);
  return type;
}

function parseTime(option: string, raw: string): string {
  const ms = Date.parse(raw);
  if (!ISO_TIME.test(raw) || Number.isNaN(ms)) {
    throw usageError(`${option} takes an ISO 8601 time such as 2025-03-01T12:00:00Z (got "${raw}")`);
  }
  return new Date(ms).toISOString();
}

function parseEventId(option: string, raw: string): string {
  const id = raw.toUpperCase();
  if (!EVENT_ID.test(id)) throw usageError(`${option} takes an event id (a 26-character ULID, got "${raw}")`);
  return id;
}

export function parseFormat(raw: string | undefined, isTerminal: boolean): ReplayFormat {
  if (raw === undefined) return isTerminal ? 'table' : 'json';
  if (raw === 'json' || raw === 'table') return raw;
  throw usageError(`--format is json or table (got "${raw}")`);
}

const CHUNK_CHARS = 64 * 1024;

/** One envelope per line, gathered into chunks of about 64 KiB: one write per chunk, not per event. */
export async function* jsonLines(events: AsyncIterable<BrokerEvent>): AsyncGenerator<string> {
  let chunk = '';
  for await (const event of events) {
    chunk += `${JSON.stringify(event)}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

async function* tableLines(events: AsyncIterable<BrokerEvent>): AsyncGenerator<string> {
  yield `${row('AT', 'SHOP', 'TYPE', 'ID', 'SOURCE', 'WHAT')}\n`;
  let chunk = '';
  for await (const event of events) {
    chunk += `${row(event.at, event.shop_id, event.type, event.id, event.source, whatOf(event))}\n`;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

function row(at: string, shop: string, type: string, id: string, source: string, what: string): string {
  return `${at.padEnd(24)}  ${shop.padEnd(14)}  ${type.padEnd(18)}  ${id.padEnd(26)}  ${source.padEnd(12)}  ${what}`;
}

/** The table's last column: what the event says, in a few words. */
function whatOf(event: BrokerEvent): string {
  switch (event.type) {
    case 'DeviceRegistered':
      return `${event.data.client_id} registered as ${event.data.type}${event.data.legacy ? ', legacy' : ''}`;
    case 'DeviceRevoked':
      return `${event.data.client_id} revoked`;
    case 'DeviceTokenRotated':
      return `${event.data.client_id} token rotated (token id ${event.data.token_id})`;
    case 'DeviceLoggedIn':
      return `${event.data.client_id} (${event.data.type}${event.data.legacy ? ', legacy protocol' : ''}) connected: ${event.data.conn_id} on ${event.data.edge_id}`;
    case 'ConnectionClosed':
      return `${event.data.client_id} disconnected: ${event.data.conn_id}, ${event.data.reason}`;
    case 'NotifyRequested': {
      const d = event.data;
      const to = d.audience === 'mains' ? d.recipients.join(',') : 'subs';
      return `${d.from_client_id ?? 'back office'} → ${to}: ${d.type}, table ${JSON.stringify(d.table_id)}, status ${d.status}`;
    }
    case 'MessageDelivered':
      // SPEC §9.1: a legacy device cannot ack; the edge recorded the write to its socket.
      return event.data.via === 'socket-write'
        ? `${event.data.ids.join(',')} written to ${event.data.client_id}'s socket (no ack)`
        : `${event.data.client_id} acked ${event.data.ids.join(',')}`;
    case 'DeliveryFailed':
      return `${event.data.id} failed after ${event.data.attempts} attempts`;
    case 'MessageHandled': {
      const d = event.data;
      const by = d.by === undefined || d.by.kind === 'api' ? 'back office' : d.by.client_id;
      const copies =
        d.notices === undefined
          ? ''
          : `; ${d.notices.length} notified, ${d.dropped?.length ?? 0} undelivered`;
      return `${d.id} handled by ${by}, status ${d.status}${copies}`;
    }
    default: {
      const never: never = event;
      return JSON.stringify(never);
    }
  }
}

/**
 * Writes chunks, waiting for 'drain' whenever the stream's buffer is full (backpressure). A reader that goes
 * away (`broker replay | head`) ends the replay quietly; any other write error is thrown.
 */
export async function writeChunks(out: NodeJS.WritableStream, chunks: AsyncIterable<string>): Promise<void> {
  let failure: (Error & { code?: string }) | null = null;
  const onError = (err: Error) => {
    failure = err;
  };
  out.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (failure) break;
      if (!out.write(chunk)) await drained(out);
      if (failure) break;
    }
  } finally {
    out.off('error', onError);
  }
  const failed = failure as (Error & { code?: string }) | null; // assigned in the listener, unseen by narrowing
  if (failed && failed.code !== 'EPIPE') throw failed;
}

function drained(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('error', done);
  });
}
