// Sending pushes: route and count each push in one script per shop (route-3.lua: it skips acked messages, those at
// their attempt limit and those whose device has no connection, and answers the connection of the rest), then
// publish the frames to each connection's edge, one PUBLISH per connection, in log order. PUBLISH answers how many
// subscribers received it: a push that reached no edge is `unreached`, and the caller retries it through BullMQ
// (SPEC §3). One that reached an edge is done: the edge writes it at most once on the connection, and bounces it
// back (bounces.ts) if it no longer holds the connection.

import { frameOf, type Inbox, type Presence } from '#eventlog';
import { encodeEdgeCommand, type Keys } from '#events';
import type { RedisClient } from '#runtime';
import type { Push, Step } from './routing';

export interface Pushed extends Push {
  attempt: number;
  route: Presence;
}

export interface Outcome {
  pushed: Pushed[];
  /** Published to an edge channel nobody listened on: retry through BullMQ. */
  unreached: Pushed[];
  /** At their attempt limit, still unacked: the caller records DeliveryFailed. */
  exhausted: Array<Push & { attempts: number }>;
}

/**
 * Whether PUBLISH's count can say "no edge received it". On a Redis Cluster it counts only the subscribers of the
 * node that took the PUBLISH, while the edge may listen on another node: there every push counts as unreached, and
 * the retry finds it acked (the cost of the old design, on Cluster only; sharded pub/sub would lift it).
 */
export type ReceiverCounts = 'exact' | 'node-local';

export async function send(
  redis: RedisClient,
  keys: Keys,
  inbox: Inbox,
  steps: readonly Step[],
  counts: ReceiverCounts,
): Promise<Outcome> {
  const pushes: Push[] = [];
  const seen = new Set<string>();
  for (const step of steps) {
    if (step.kind !== 'push' || seen.has(step.push.item.id)) continue;
    seen.add(step.push.item.id);
    pushes.push(step.push);
  }
  const routed = await routePushes(inbox, pushes);

  const byConn = new Map<string, { edgeId: string; frames: string[]; pushed: Pushed[] }>();
  const connOf = (route: Presence) => {
    let entry = byConn.get(route.conn_id);
    if (!entry) {
      entry = { edgeId: route.edge_id, frames: [], pushed: [] };
      byConn.set(route.conn_id, entry);
    }
    return entry;
  };
  const outcome: Outcome = { pushed: [], unreached: [], exhausted: [] };
  seen.clear();
  for (const step of steps) {
    if (step.kind === 'broadcast') {
      connOf(step.route).frames.push(step.frame);
      continue;
    }
    if (seen.has(step.push.item.id)) continue;
    seen.add(step.push.item.id);
    const { attempt, route } = routed.get(step.push.item.id) ?? { attempt: 0, route: null };
    if (attempt > 0 && route) {
      const conn = connOf(route);
      conn.frames.push(frameOf(step.push.item, attempt));
      const pushed = { ...step.push, attempt, route };
      conn.pushed.push(pushed);
      outcome.pushed.push(pushed);
    } else if (attempt < 0) {
      outcome.exhausted.push({ ...step.push, attempts: -attempt });
    }
  }
  await Promise.all(
    [...byConn].map(async ([connId, { edgeId, frames, pushed }]) => {
      const receivers = await redis.publish(
        keys.edgeChannel(edgeId),
        encodeEdgeCommand({ kind: 'deliver', conn_id: connId, frames }),
      );
      if (receivers === 0 || counts === 'node-local') outcome.unreached.push(...pushed);
    }),
  );
  return outcome;
}

async function routePushes(
  inbox: Inbox,
  pushes: Push[],
): Promise<Map<string, { attempt: number; route: Presence | null }>> {
  const byShop = new Map<string, Push[]>();
  for (const push of pushes) {
    const list = byShop.get(push.shop) ?? [];
    list.push(push);
    byShop.set(push.shop, list);
  }
  const routed = new Map<string, { attempt: number; route: Presence | null }>();
  await Promise.all(
    [...byShop].map(async ([shop, list]) => {
      const answers = await inbox.routePushes(
        shop,
        list.map((push) => ({ id: push.item.id, clientId: push.client, limit: push.limit })),
      );
      list.forEach((push, i) => {
        routed.set(push.item.id, answers[i] ?? { attempt: 0, route: null });
      });
    }),
  );
  return routed;
}
