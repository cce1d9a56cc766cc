// libs/events: the contract every service, the device client, the CLI and the tests import. No I/O here.
export * from './catalogue';
export * from './edge-commands';
export * from './envelope';
export * from './errors';
export * from './frames';
export * from './ids';
export * from './keys';
export * from './legacy';
export * from './recipients';
export * as rest from './rest';
export * from './schema';
