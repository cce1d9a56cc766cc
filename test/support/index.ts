export * from './context';
export * from './devices';
export * from './events';
export * from './log';
export * from './raw-socket';
export * from './spawn';
export * from './wait';
