export * from './context';
export * from './wait';
