// The dispatcher's batch: route each NotifyRequested and DeviceLoggedIn of a shard batch to the live
// connections of its recipients, in log order, then schedule one retry check for everything pushed.
// The batches of all the shards this process reads are group-committed: the ones that arrive while a dispatch
// is under way (or within DISPATCHER_LINGER_MS) are routed together, with one presence read, one push script per
// shop and one PUBLISH per connection. Each shard's entries keep their log order; shops never span shards.

import type { ConsumedEntry, Inbox, PresenceBook } from '#eventlog';
import type { Keys } from '#events';
import { Coalescer, counter, type RedisClient, togetherOrEachAlone } from '#runtime';
import { send } from './deliver';
import type { Retries } from './retries';
import { FIRST_PUSH_LIMIT, type OnlineByShop, type Step, shopsToRoute, stepsOf } from './routing';

const pushed = counter('broker_dispatcher_pushes_total', 'First pushes of messages (live and backlog)');

export interface BatchDeps {
  redis: RedisClient;
  keys: Keys;
  inbox: Inbox;
  presence: PresenceBook;
  retries: Retries;
  attemptBudget: number;
  /** How long a dispatch waits for other shards' batches when nothing is in flight. */
  lingerMs: number;
  now(): number;
}

export function dispatchBatch(deps: BatchDeps) {
  const coalescer = new Coalescer<ConsumedEntry[]>(
    togetherOrEachAlone((batches) => dispatchEntries(deps, batches.flat())),
    { lingerMs: deps.lingerMs },
  );
  return (_shard: number, entries: ConsumedEntry[]): Promise<void> => coalescer.submit(entries);
}

async function dispatchEntries(deps: BatchDeps, entries: ConsumedEntry[]): Promise<void> {
  const shops = shopsToRoute(entries.map((entry) => entry.event));
  if (shops.length === 0) return;
  const online: OnlineByShop = await deps.presence.onlineIn(shops, deps.now());
  const steps: Step[] = [];
  for (const { event, streamId } of entries) {
    for (const step of stepsOf(event, streamId, online)) {
      if (step.kind !== 'backlog') {
        steps.push(step);
        continue;
      }
      // SPEC §5.4: every undelivered message of the device, oldest first, before anything newer.
      const backlog = await deps.inbox.backlog(step.route.shop_id, step.route.client_id, step.upToStreamId);
      for (const payload of backlog)
        steps.push({ kind: 'push', push: { payload, route: step.route, limit: FIRST_PUSH_LIMIT } });
    }
  }
  if (steps.length === 0) return;
  const outcome = await send(deps.redis, deps.keys, deps.inbox, steps);
  pushed.inc(outcome.pushed.length);
  await deps.retries.schedule(
    1,
    outcome.pushed.map((p) => ({
      shop: p.payload.shop_id,
      client: p.payload.to_client_id,
      id: p.payload.id,
      limit: p.attempt + deps.attemptBudget - 1,
    })),
  );
}
