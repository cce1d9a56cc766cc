// Sending pushes: route and count each push in one script per shop (route-3.lua: it skips acked messages, those at
// their attempt limit and those whose device has no connection, and answers the connection of the rest), then
// publish the frames to each connection's edge, one SPUBLISH per connection (on the edge's channel of the shop's
// shard), in log order. SPUBLISH answers how many subscribers received it, on a Redis Cluster too: a push that
// reached no edge is `unreached`, and the caller retries it through BullMQ (SPEC §3). One that reached an edge is done: the edge writes it at most once on the connection, and bounces it
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

export async function send(
  redis: RedisClient,
  keys: Keys,
  inbox: Inbox,
  steps: readonly Step[],
): Promise<Outcome> {
  const pushes: Push[] = [];
  const seen = new Set<string>();
  for (const step of steps) {
    if (step.kind !== 'push' || seen.has(step.push.item.id)) continue;
    seen.add(step.push.item.id);
    pushes.push(step.push);
  }
  const routed = await routePushes(inbox, pushes);

  const byConn = new Map<string, { channel: string; frames: string[]; pushed: Pushed[] }>();
  const connOf = (route: Presence) => {
    let entry = byConn.get(route.conn_id);
    if (!entry) {
      entry = { channel: keys.edgeChannelOfShop(route.shop_id, route.edge_id), frames: [], pushed: [] };
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
    [...byConn].map(async ([connId, { channel, frames, pushed }]) => {
      const receivers = await redis.spublish(
        channel,
        encodeEdgeCommand({ kind: 'deliver', conn_id: connId, frames }),
      );
      if (Number(receivers) === 0) outcome.unreached.push(...pushed); // ioredis types SPUBLISH's count unknown
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
