// A describe block's own broker: a fresh test context and the services the block asks for, started in-process
// through their start() before its tests, stopped after them (the api and the edge first, so nothing new comes in)
// and the context dropped. Hooks the block registers later run inside this: their afterAll runs first.
import { type DispatcherHandle, start as startDispatcher } from '#dispatcher';
import { type EdgeHandle, start as startEdge } from '#edge';
import { type PersisterHandle, start as startPersister } from '#persister';
import type { Env } from '#runtime';
import { type Api, startTestApi } from './api';
import { blockFixture } from './block-fixture';
import { createTestContext, type TestContext } from './context';

export interface BrokerServices {
  api?: boolean;
  edge?: boolean;
  persister?: boolean;
  dispatcher?: boolean;
}

/** Set once the block's beforeAll has run; a service the block did not ask for stays unset. */
export interface InProcessBroker {
  ctx: TestContext;
  api: Api;
  edge: EdgeHandle;
  /** The edge's WebSocket address. */
  wsUrl: string;
  persister: PersisterHandle;
  dispatcher: DispatcherHandle;
}

/** Registers the beforeAll that starts the services (with the context's settings plus `overrides`) and the afterAll. */
export function brokerInProcess(services: BrokerServices, overrides: Env = {}): InProcessBroker {
  return blockFixture<InProcessBroker>(
    async (broker) => {
      const ctx = await createTestContext(overrides);
      broker.ctx = ctx;
      if (services.api) broker.api = await startTestApi(ctx);
      if (services.edge) {
        broker.edge = await startEdge(ctx.config, { log: ctx.log });
        broker.wsUrl = `ws://127.0.0.1:${broker.edge.port}/ws`;
      }
      if (services.persister) broker.persister = await startPersister(ctx.config, { log: ctx.log });
      if (services.dispatcher) broker.dispatcher = await startDispatcher(ctx.config, { log: ctx.log });
    },
    async (broker) => {
      await broker.api?.handle.stop();
      await broker.edge?.stop();
      await broker.dispatcher?.stop();
      await broker.persister?.stop();
      await broker.ctx?.cleanup();
    },
  );
}
