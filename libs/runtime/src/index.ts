// libs/runtime: the I/O every service needs (config, logs, Redis, PostgreSQL, health, metrics, lifecycle).
export * from './coalesce';
export * from './config';
export * from './http';
export * from './lifecycle';
export * from './logger';
export * from './metrics';
export * from './paths';
export * from './postgres';
export * from './redis';
export * from './tokens';
