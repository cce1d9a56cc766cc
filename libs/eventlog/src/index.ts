// libs/eventlog: the I/O around the log that every service shares — appending, consuming, dead letters, presence.
export * from './append';
export * from './bounces';
export * from './consume';
export * from './dead-letter';
export * from './edge-close';
export * from './failures';
export * from './handle';
export * from './history';
export * from './inbox';
export * from './presence';
export * from './req-archive';
export * from './rotate';
