export * from './certificates';
export * from './context';
export * from './devices';
export * from './legacy-device';
export * from './log';
export * from './raw-socket';
export * from './spawn';
export * from './wait';
