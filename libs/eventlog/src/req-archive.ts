// The archive's side of the req_id records (SPEC §3, issue 19): Redis keeps exact records only for minutes, so a
// resend that comes later (or a req_id the shard's filters only may hold) is looked up among the archived events.
import { BrokerError } from '#events';
import { counter, type Pool } from '#runtime';
import type { EventLogOptions } from './append';

/** The event id of the NotifyRequested this sender sent with this req_id within 24 h, or null. */
export type NotifyArchive = (shopId: string, senderId: string, reqId: string) => Promise<string | null>;

const lookups = counter(
  'broker_req_id_archive_lookups_total',
  'Notifies whose req_id the exact records did not hold and the filters may: looked up in the archive, by outcome ' +
    '(duplicate: a resend after the window; new: a false positive of the filters; failed: PostgreSQL did not answer)',
  ['outcome'],
);

/** Looks notifies up in PostgreSQL's events (the partial index events_notify_req). `senderId` '' is the API. */
export function notifyArchiveOn(pool: Pool): NotifyArchive {
  return async (shopId, senderId, reqId) => {
    let rows: Array<{ id: string }>;
    try {
      ({ rows } = await pool.query<{ id: string }>(
        `SELECT id FROM events
          WHERE shop_id = $1 AND type = 'NotifyRequested' AND data->>'req_id' = $2
            AND coalesce(data->>'from_client_id', '') = $3 AND at > now() - interval '24 hours'
          ORDER BY stream_ms, stream_seq LIMIT 1`,
        [shopId, reqId, senderId],
      ));
    } catch (err) {
      lookups.inc({ outcome: 'failed' });
      throw new BrokerError(
        'LOG_UNAVAILABLE',
        `could not tell whether this req_id was sent before (the archive did not answer: ${(err as Error).message})`,
      );
    }
    const id = rows[0]?.id ?? null;
    lookups.inc({ outcome: id === null ? 'new' : 'duplicate' });
    return id;
  };
}

/**
 * The EventLog options of a service that can reach the archive: exact req_id records stay in Redis as long as the
 * streams keep their tail (STREAM_RETENTION_MS), and older resends are looked up in PostgreSQL.
 */
export function archiveBackedRecords(pool: Pool, retentionMs: number): EventLogOptions {
  return { archive: notifyArchiveOn(pool), reqWindowS: Math.floor(retentionMs / 1000) };
}
