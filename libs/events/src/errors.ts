// The one catalogue of expected failures: each condition's WebSocket reply code, HTTP status and close code.
// The edge, the api and the CLI look codes up here and nowhere else.

export interface ErrorSpec {
  /** `code` of the WebSocket reply frame, when the condition is answered with a frame. */
  readonly ws?: number;
  /** HTTP status, when the condition can reach the REST API. */
  readonly http?: number;
  /** WebSocket close code, when the condition ends the connection. */
  readonly close?: number;
  /** Default message. */
  readonly message: string;
}

export const ERRORS = {
  NOT_LOGGED_IN: { ws: 401, http: 401, message: 'login first' },
  INVALID_INPUT: { ws: 400, http: 400, message: 'invalid input' },
  UNKNOWN_OP: { ws: 400, message: 'unknown op' },
  MALFORMED_JSON: { ws: 400, http: 400, message: 'malformed JSON' },
  NO_MAIN_DEVICE: { ws: 404, http: 404, message: 'shop has no registered main device' },
  NOT_FOUND: { ws: 404, http: 404, message: 'not found' },
  NOT_YOUR_MESSAGE: { ws: 403, http: 403, message: 'message is addressed to another device' },
  RATE_LIMITED: { ws: 429, http: 429, close: 1008, message: 'too many frames' },
  TOKEN_INVALID: { ws: 401, http: 401, close: 4401, message: 'bad or expired token' },
  DEVICE_REVOKED: { ws: 403, http: 403, close: 4403, message: 'device revoked' },
  UNAUTHORIZED: { http: 401, message: 'missing or wrong API key' },
  CONFLICT: { ws: 409, http: 409, message: 'conflict' },
  // SPEC §10: the request was handled first by someone else (the reply's data says who, when, with what status).
  ALREADY_HANDLED: { ws: 409, http: 409, message: 'the request was already handled' },
  MAIN_ONLY: { ws: 403, message: 'only a main device handles messages' },
  PAYLOAD_TOO_LARGE: { http: 413, close: 1009, message: 'frame too large' },
  UNPROCESSABLE: { http: 422, message: 'unprocessable' },
  REPLACED: { ws: 409, close: 4409, message: 'replaced by a newer login of the same device' },
  CLOSED_BY_OPERATOR: { close: 4000, message: 'closed by an operator' },
  LOGIN_TIMEOUT: { close: 4408, message: 'no login within the login timeout' },
  DRAINING: { http: 503, close: 1001, message: 'server draining, reconnect elsewhere' },
  SLOW_READER: { close: 1013, message: 'send buffer over its bound' },
  DEAD_PEER: { close: 1006, message: 'missed pongs' },
  // SPEC §5.6: a stalled Redis may still apply a write the caller was refused, so the outcome is unknown; a
  // repeat with the same req_id answers the first event, never a second one.
  LOG_UNAVAILABLE: {
    ws: 503,
    http: 503,
    message: 'event log unavailable: the outcome is unknown; retry with the same req_id',
  },
  PROJECTION_TIMEOUT: { http: 503, message: 'recorded, but the projection did not show it in time' },
  DATABASE_UNAVAILABLE: { ws: 503, http: 503, message: 'projections unavailable, try again' },
  EDGE_UNREACHABLE: { http: 503, message: 'the edge holding the connection is not listening, try again' },
  INTERNAL: { ws: 500, http: 500, close: 1011, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An expected condition with a name. Throw it; the edge and the api turn it into a frame, a close or a response. */
export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly spec: ErrorSpec;
  /** What the reply carries besides code and message (ALREADY_HANDLED: who handled it first). */
  readonly data: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message?: string, data?: Record<string, unknown>) {
    super(message ?? ERRORS[code].message);
    this.name = 'BrokerError';
    this.code = code;
    this.spec = ERRORS[code];
    this.data = data;
  }
}

export function isBrokerError(err: unknown): err is BrokerError {
  return err instanceof BrokerError;
}
