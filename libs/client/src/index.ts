// libs/client: the device client for the broker's WebSocket protocol v1, for POS apps, tests and benchmarks.
// The public surface is this list; connection, frame-inbox, ack-queue, request-outbox, deferred and the rest of
// wire are internals and must not be exported.
export { DeviceClient } from './client';
export { CLIENT_ERRORS, ClientError, type ClientErrorKind, closeCodeName, isClientError } from './errors';
export type {
  ClientLogger,
  CloseInfo,
  DeviceClientEvents,
  DeviceClientOptions,
  LoginInfo,
  NotifyInput,
  ReconnectInfo,
} from './options';
export { RecentIds } from './recent-ids';
export {
  type BackoffPolicy,
  backoffDelayMs,
  DEFAULT_BACKOFF,
  finalFailureOf,
  isFinalClose,
  isFinalLoginCode,
  nextAttempt,
  STABLE_CONNECTION_MS,
} from './reconnect';
export {
  ACK_IDS_PER_FRAME,
  type FrameOf,
  type HandleResult,
  type NotifyResult,
  type ServerFrame,
} from './wire';
