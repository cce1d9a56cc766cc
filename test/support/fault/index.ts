// The fault suite's support: a broker of child processes to kill and cut, the load on it, and the one checker.
export * from './balancer';
export * from './checker';
export * from './cluster';
export * from './gate';
export * from './load';
export * from './scenario';
