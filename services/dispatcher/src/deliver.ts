// Sending pushes: count each push in the inbox (atomically skipping acked messages and those at their attempt
// limit), then publish the frames to each connection's edge, one PUBLISH per connection, in log order.

import type { Inbox } from '#eventlog';
import { encodeEdgeCommand, type Keys, messageFrameOf } from '#events';
import type { RedisClient } from '#runtime';
import type { Push, Step } from './routing';

export interface Pushed extends Push {
  attempt: number;
}

export interface Outcome {
  pushed: Pushed[];
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
    if (step.kind !== 'push' || seen.has(step.push.payload.id)) continue;
    seen.add(step.push.payload.id);
    pushes.push(step.push);
  }
  const attempts = await countPushes(inbox, pushes);

  const framesByConn = new Map<string, { edgeId: string; frames: string[] }>();
  const frameList = (route: Push['route']) => {
    let entry = framesByConn.get(route.conn_id);
    if (!entry) {
      entry = { edgeId: route.edge_id, frames: [] };
      framesByConn.set(route.conn_id, entry);
    }
    return entry.frames;
  };
  const outcome: Outcome = { pushed: [], exhausted: [] };
  seen.clear();
  for (const step of steps) {
    if (step.kind === 'broadcast') {
      frameList(step.route).push(step.frame);
      continue;
    }
    if (step.kind !== 'push' || seen.has(step.push.payload.id)) continue;
    seen.add(step.push.payload.id);
    const attempt = attempts.get(step.push.payload.id) ?? 0;
    if (attempt > 0) {
      frameList(step.push.route).push(JSON.stringify(messageFrameOf(step.push.payload, attempt)));
      outcome.pushed.push({ ...step.push, attempt });
    } else if (attempt < 0) {
      outcome.exhausted.push({ ...step.push, attempts: -attempt });
    }
  }
  await Promise.all(
    [...framesByConn].map(([connId, { edgeId, frames }]) =>
      redis.publish(
        keys.edgeChannel(edgeId),
        encodeEdgeCommand({ kind: 'deliver', conn_id: connId, frames }),
      ),
    ),
  );
  return outcome;
}

async function countPushes(inbox: Inbox, pushes: Push[]): Promise<Map<string, number>> {
  const byShop = new Map<string, Push[]>();
  for (const push of pushes) {
    const list = byShop.get(push.payload.shop_id) ?? [];
    list.push(push);
    byShop.set(push.payload.shop_id, list);
  }
  const attempts = new Map<string, number>();
  await Promise.all(
    [...byShop].map(async ([shop, list]) => {
      const counts = await inbox.countPushes(
        shop,
        list.map((push) => ({ id: push.payload.id, limit: push.limit })),
      );
      list.forEach((push, i) => {
        attempts.set(push.payload.id, counts[i] ?? 0);
      });
    }),
  );
  return attempts;
}
