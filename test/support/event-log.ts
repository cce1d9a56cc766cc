// The log on a real Redis for the eventlog tests: a describe block's own context (key prefix, database) and an
// EventLog over it, and the devices a shop starts with, registered through the log as the api would.
import { EventLog } from '#eventlog';
import type { DeviceType } from '#events';
import type { Env } from '#runtime';
import { blockFixture } from './block-fixture';
import { createTestContext, type TestContext } from './context';
import { deviceRegistered } from './events';

/** Set once the block's beforeAll has run. */
export interface LogUnderTest {
  ctx: TestContext;
  log: EventLog;
}

/** Registers the beforeAll that creates the context and the log, and the afterAll that drops the context. */
export function eventLogOnRedis(overrides: Env = {}): LogUnderTest {
  return blockFixture<LogUnderTest>(
    async (world) => {
      world.ctx = await createTestContext(overrides);
      world.log = new EventLog(world.ctx.redis, world.ctx.keys);
    },
    async (world) => {
      await world.ctx?.cleanup();
    },
  );
}

/** Registers each device (client id → type) of the shop in turn, token ids `<client_id>-t1`. */
export async function registerAll(log: EventLog, shopId: string, devices: Record<string, DeviceType>) {
  for (const [clientId, type] of Object.entries(devices))
    await log.register(deviceRegistered(shopId, clientId, type));
}
