// The dispatcher's batch: route each NotifyRequested of a shard batch to the connections of its recipients, in
// log order. A push that reached its edge is finished (the edge writes it once on the connection, and the device
// acks it or gets it again with its next login's backlog); only the pushes no edge received are scheduled for a
// retry in BullMQ (SPEC §3), so the happy path never touches BullMQ.
// The batches of all the shards this process reads are group-committed: the ones that arrive while a dispatch
// is under way (or within DISPATCHER_LINGER_MS) are routed together, with one presence read, one push script per
// shop and one PUBLISH per connection. Each shard's entries keep their log order; shops never span shards.

import type { ConsumedEntry, Inbox, PresenceBook } from '#eventlog';
import type { Keys } from '#events';
import { Coalescer, counter, type RedisClient, togetherOrEachAlone } from '#runtime';
import { type ReceiverCounts, send } from './deliver';
import type { Retries } from './retries';
import { type OnlineByShop, type Step, shopsToBroadcast, stepsOf } from './routing';

const pushed = counter('broker_dispatcher_pushes_total', 'First pushes of messages to a connection');
const unreached = counter(
  'broker_dispatcher_unreached_total',
  'Pushes no edge received (scheduled for a retry)',
);

export interface BatchDeps {
  redis: RedisClient;
  keys: Keys;
  inbox: Inbox;
  presence: PresenceBook;
  retries: Retries;
  attemptBudget: number;
  receiverCounts: ReceiverCounts;
  /** How long a dispatch waits for other shards' batches when nothing is in flight. */
  lingerMs: number;
}

export function dispatchBatch(deps: BatchDeps) {
  const coalescer = new Coalescer<ConsumedEntry[]>(
    togetherOrEachAlone((batches) => dispatchEntries(deps, batches.flat())),
    { lingerMs: deps.lingerMs },
  );
  return (_shard: number, entries: ConsumedEntry[]): Promise<void> => coalescer.submit(entries);
}

async function dispatchEntries(deps: BatchDeps, entries: ConsumedEntry[]): Promise<void> {
  // Pushes find their connections as they are counted; only broadcasts need the shops' presence read first.
  const shops = shopsToBroadcast(entries.map((entry) => entry.event));
  const online: OnlineByShop = shops.length === 0 ? new Map() : await deps.presence.listedIn(shops);
  const steps: Step[] = [];
  for (const { event } of entries) steps.push(...stepsOf(event, online));
  if (steps.length === 0) return;
  const outcome = await send(deps.redis, deps.keys, deps.inbox, steps, deps.receiverCounts);
  pushed.inc(outcome.pushed.length);
  if (outcome.unreached.length === 0) return;
  unreached.inc(outcome.unreached.length);
  // Stored before the batch is acknowledged: a dispatcher that dies in between leaves the batch to be dispatched
  // again.
  await deps.retries.schedule(
    1,
    outcome.unreached.map((p) => ({
      shop: p.shop,
      client: p.client,
      id: p.item.id,
      limit: p.attempt + deps.attemptBudget - 1,
    })),
  );
}
