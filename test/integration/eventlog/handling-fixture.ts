// What the handle tests share: real Redis, real PostgreSQL and the persister running (a handle reads which copies
// of a request exist from the projection), and the deps handleRequest takes.
import { EventLog, type HandleDeps } from '#eventlog';
import { start as startPersister } from '#persister';
import { connectPostgres, type Pool } from '#runtime';
import { blockFixture, createTestContext, type TestContext } from '#test-support';

export interface HandlingWorld {
  ctx: TestContext;
  log: EventLog;
  pool: Pool;
  persister: Awaited<ReturnType<typeof startPersister>>;
  /** What handleRequest takes: this world's Redis, keys and pool. */
  deps: HandleDeps;
}

/** The block's handling world: started before its tests (after the block's earlier hooks), stopped after them. */
export function handlingWorld(): HandlingWorld {
  return blockFixture<HandlingWorld>(
    async (world) => {
      world.ctx = await createTestContext();
      world.log = new EventLog(world.ctx.redis, world.ctx.keys);
      world.persister = await startPersister(world.ctx.config, { log: world.ctx.log, healthServer: false });
      world.pool = await connectPostgres(world.ctx.databaseUrl, world.ctx.log);
      world.deps = { redis: world.ctx.redis, keys: world.ctx.keys, pool: world.pool };
    },
    async (world) => {
      await world.persister?.stop();
      await world.pool?.end();
      await world.ctx?.cleanup();
    },
  );
}
