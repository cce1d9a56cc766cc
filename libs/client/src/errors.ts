// The errors a device client rejects with. Protocol codes (reply codes, close codes) come from the edge and
// are named by the catalogue in #events; the kinds here are the client's own conditions.
import { ERRORS, type ErrorCode } from '#events';

export const CLIENT_ERRORS = {
  /** The edge answered the login with a non-zero code. */
  LOGIN_REFUSED: 'login refused',
  /** The edge closed with a code after which reconnecting cannot help (4401, 4403, 4409). */
  CLOSED_FINAL: 'connection closed for good',
  /** The connection dropped and `reconnect` is off. */
  CONNECTION_LOST: 'connection lost',
  /** The edge answered a request with a non-zero code. */
  REFUSED: 'request refused',
  /** No answer in time; for a notify the outcome is unknown (re-send the same req_id to find out). */
  TIMEOUT: 'no reply in time',
  /** close() or logout() was called before the answer came. */
  CLIENT_CLOSED: 'client closed',
  /** A request that is only valid on a logged-in connection was made without one. */
  NOT_CONNECTED: 'not connected',
  /** The frame is over the edge's size limit; sending it would close the connection with 1009. */
  FRAME_TOO_LARGE: 'frame too large',
} as const;

export type ClientErrorKind = keyof typeof CLIENT_ERRORS;

export interface ClientErrorDetails {
  /** The reply code when the edge answered, otherwise the close code when the socket closed. */
  code?: number;
  /** The edge's `msg`, or the close reason. */
  msg?: string;
  closeCode?: number;
  reqId?: string;
}

export class ClientError extends Error {
  readonly kind: ClientErrorKind;
  readonly code: number | undefined;
  readonly msg: string | undefined;
  readonly closeCode: number | undefined;
  readonly reqId: string | undefined;

  constructor(kind: ClientErrorKind, details: ClientErrorDetails = {}, message?: string) {
    super(message ?? describe(kind, details));
    this.name = 'ClientError';
    this.kind = kind;
    this.code = details.code ?? details.closeCode;
    this.msg = details.msg;
    this.closeCode = details.closeCode;
    this.reqId = details.reqId;
  }
}

export function isClientError(err: unknown): err is ClientError {
  return err instanceof ClientError;
}

function describe(kind: ClientErrorKind, details: ClientErrorDetails): string {
  const parts: string[] = [CLIENT_ERRORS[kind]];
  if (details.code !== undefined) parts.push(`code ${details.code}`);
  if (details.closeCode !== undefined && details.closeCode !== details.code) {
    const name = closeCodeName(details.closeCode);
    parts.push(`close ${details.closeCode}${name ? ` ${name}` : ''}`);
  }
  if (details.msg) parts.push(details.msg);
  return parts.join(': ');
}

// Codes the catalogue does not own, or owns with a narrower meaning (1006 is any abnormal drop, not only a
// dead peer), are named first.
const STANDARD_CLOSES: Readonly<Record<number, string>> = {
  1000: 'NORMAL',
  1005: 'NO_STATUS',
  1006: 'ABNORMAL',
};

/** The name of a close code (4401 → TOKEN_INVALID, 1001 → DRAINING), for logs and error messages. */
export function closeCodeName(closeCode: number): string | undefined {
  const standard = STANDARD_CLOSES[closeCode];
  if (standard) return standard;
  for (const [name, spec] of Object.entries(ERRORS)) {
    if ('close' in spec && spec.close === closeCode) return name as ErrorCode;
  }
  return undefined;
}
