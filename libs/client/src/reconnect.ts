// When a device client reconnects, how long it waits first, and which failures end it for good. Pure:
// randomness comes in as a parameter, and nothing here touches a socket or a timer.
import { ERRORS } from '#events';
import { ClientError } from './errors';

export interface BackoffPolicy {
  /** Ceiling of the first wait, in ms; each consecutive failure doubles it. */
  baseMs: number;
  /** The ceiling never grows past this, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ baseMs: 500, maxMs: 30_000 });

/**
 * A connection that stayed logged in this long counts as healthy: the next failure starts the schedule
 * again from attempt 0. A shorter one (an edge that accepts and drops at once) keeps climbing, so a
 * broken server is not hammered at the base rate.
 */
export const STABLE_CONNECTION_MS = 10_000;

/**
 * Exponential backoff with full jitter: uniform in [0, min(maxMs, baseMs·2^attempt)), attempt from 0.
 * Full jitter spreads a crowd of devices that lost the same edge (a 1001 drain) over the whole window.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number): number {
  // 2^30 already passes any sane maxMs; capping the exponent keeps the product finite.
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/** The attempt number for the wait after a close, given how long that connection was logged in (0 if never). */
export function nextAttempt(previousAttempt: number, loggedInForMs: number): number {
  return loggedInForMs >= STABLE_CONNECTION_MS ? 0 : previousAttempt + 1;
}

/**
 * Close codes after which reconnecting cannot help: the token is bad (4401), the device is revoked (4403),
 * or a newer login of the same device took over (4409; reconnecting would knock that one off in turn).
 * Everything else (1001 draining, 1006 lost, 1011, 1013 slow reader, 4000 operator, 4408 login timeout)
 * is worth another try.
 */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  ERRORS.TOKEN_INVALID.close,
  ERRORS.DEVICE_REVOKED.close,
  ERRORS.REPLACED.close,
]);

export function isFinalClose(closeCode: number): boolean {
  return FINAL_CLOSE_CODES.has(closeCode);
}

/**
 * A refused login is final when the request itself is wrong (400 bad fields, 401 token, 403 revoked, …):
 * sending it again gets the same answer. 5xx (503 event log unavailable) and 429 are passing conditions.
 */
export function isFinalLoginCode(code: number): boolean {
  return code >= 400 && code < 500 && code !== 408 && code !== 429;
}

/**
 * The error that ends the client for good after a close, or undefined when reconnecting can help.
 * @param failure why the connection ended, as far as the client knows (a refused login, a lost socket)
 */
export function finalFailureOf(
  closeCode: number,
  reason: string,
  failure: ClientError,
): ClientError | undefined {
  if (failure.kind === 'LOGIN_REFUSED' && failure.code !== undefined && isFinalLoginCode(failure.code)) {
    // The refusal came as a reply; the close that followed (4401, 4403) completes the picture.
    return new ClientError('LOGIN_REFUSED', { code: failure.code, msg: failure.msg, closeCode });
  }
  if (isFinalClose(closeCode)) return new ClientError('CLOSED_FINAL', { closeCode, msg: reason });
  return undefined;
}
