// The persister: projects the event log into PostgreSQL. start() is its one entry point.
export * from './projection';
