export * from './context';
export * from './devices';
export * from './raw-socket';
export * from './wait';
export * from './log';
export * from './spawn';
