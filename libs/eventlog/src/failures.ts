// Telling "Redis is unreachable, retry" from a real fault (isNotConnectionError in bullmq). A write refused this way
// has an unknown outcome (SPEC §5.6): its bytes may still reach Redis, so only a retry with its req_id is safe.
import { BrokerError } from '#events';

const UNAVAILABLE_REPLIES = /^(OOM|LOADING|CLUSTERDOWN|TRYAGAIN|READONLY|MASTERDOWN|BUSY)\b/;

export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLIES.test(err.message);
  // Connection closed, command timed out, offline queue disabled, retries exhausted: all mean "Redis is away".
  return true;
}

/** Rethrows a Redis failure as LOG_UNAVAILABLE when it means Redis could not be reached. */
export function asLogError(err: unknown): Error {
  if (err instanceof BrokerError) return err;
  if (isRedisUnavailable(err)) return new BrokerError('LOG_UNAVAILABLE');
  return err as Error;
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300', // too_many_connections
]);
const TRANSIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection error|Connection is closed/i;

/** A failure that says "a dependency is away, wait and retry", not "this input is bad". */
export function isTransientFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  if (TRANSIENT_MESSAGES.test(err.message)) return true;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLIES.test(err.message);
  return err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError';
}
