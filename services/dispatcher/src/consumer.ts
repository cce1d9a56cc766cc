// The dispatcher's batch: route each NotifyRequested of a shard batch to the connections of its recipients, in
// log order (a sub's notify is pushed by its append, notify-12.lua: only the pushes that reached no edge are left
// to retry). A push that reached its edge is finished (the edge writes it once on the connection, and the device
// acks it or gets it again with its next login's backlog); only the pushes no edge received are scheduled for a
// retry in BullMQ (SPEC §3), so the happy path never touches BullMQ.
// The batches of all the shards this process reads are group-committed: the ones that arrive while a dispatch
// is under way are routed together (and the reads are DISPATCHER_LINGER_MS apart, so a round carries what
// arrived meanwhile), with one presence read, one push script per
// shop and one SPUBLISH per connection. Each shard's entries keep their log order; shops never span shards.

import type { ConsumedEntry, Inbox, PresenceBook } from '#eventlog';
import type { Keys } from '#events';
import { Coalescer, counter, type RedisClient, togetherOrEachAlone } from '#runtime';
import { send } from './deliver';
import type { Retries } from './retries';
import { type OnlineByShop, type Push, type Step, shopsToBroadcast, stepsOf } from './routing';

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
}

export function dispatchBatch(deps: BatchDeps) {
  const coalescer = new Coalescer<ConsumedEntry[]>(
    togetherOrEachAlone((batches) => dispatchEntries(deps, batches.flat())),
  );
  return (_shard: number, entries: ConsumedEntry[]): Promise<void> => coalescer.submit(entries);
}

async function dispatchEntries(deps: BatchDeps, entries: ConsumedEntry[]): Promise<void> {
  // Pushes find their connections as they are counted; only broadcasts need the shops' presence read first.
  const shops = shopsToBroadcast(entries);
  const online: OnlineByShop = shops.length === 0 ? new Map() : await deps.presence.listedIn(shops);
  const steps: Step[] = [];
  // First pushes made by the append that reached no edge: attempt 1 was counted there.
  const retries: Array<Push & { attempt: number }> = [];
  for (const entry of entries) {
    for (const step of stepsOf(entry.event, online, entry.unreached)) {
      if (step.kind === 'retry') retries.push({ ...step.push, attempt: 1 });
      else steps.push(step);
    }
  }
  if (steps.length > 0) {
    const outcome = await send(deps.redis, deps.keys, deps.inbox, steps);
    pushed.inc(outcome.pushed.length);
    unreached.inc(outcome.unreached.length);
    retries.push(...outcome.unreached);
  }
  if (retries.length === 0) return;
  // Stored before the batch is acknowledged: a dispatcher that dies in between leaves the batch to be dispatched
  // again.
  await deps.retries.schedule(
    1,
    retries.map((p) => ({
      shop: p.shop,
      client: p.client,
      id: p.item.id,
      limit: p.attempt + deps.attemptBudget - 1,
    })),
  );
}
