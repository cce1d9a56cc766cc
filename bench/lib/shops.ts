// The shops of a run on live sockets, through libs/client (as a POS app would: it reconnects, re-sends unanswered
// notifies with the same req_id, acks and deduplicates): each shop's sub device sends notifies, its main devices
// receive and auto-ack them. Scenarios plug their counting into the clients' events.
import { DeviceClient, type NotifyInput } from '#client';
import type { ShopSpec } from './fleet';

export interface LiveShop {
  spec: ShopSpec;
  sub: DeviceClient;
  mains: DeviceClient[];
}

/** Connections the server closed under the devices (each one reconnected by the client), by close code. */
export class Disruptions {
  readonly byCode = new Map<number, number>();
  record(code: number): void {
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }
  snapshot(): Map<number, number> {
    return new Map(this.byCode);
  }
  /** The closes since a snapshot, as "3× 1006, 1× 4409" (or "none"). */
  describeSince(before: ReadonlyMap<number, number>): string {
    return (
      [...this.byCode]
        .map(([code, n]) => [code, n - (before.get(code) ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .map(([code, n]) => `${n}× ${code}`)
        .join(', ') || 'none'
    );
  }
}

const CONNECT_CONCURRENCY = 100;

function client(url: string, token: string, disruptions: Disruptions): DeviceClient {
  const device = new DeviceClient({
    url,
    token,
    keepFrames: 0, // events only: nothing kept for next()/messages()
    notifyTimeoutMs: Number.POSITIVE_INFINITY, // a late answer is measured, not turned into an error
    backoff: { baseMs: 100, maxMs: 2000 },
  });
  device.on('close', ({ code, willReconnect }) => {
    if (willReconnect) disruptions.record(code);
  });
  return device;
}

export async function connectShops(
  url: string,
  shops: ShopSpec[],
  disruptions: Disruptions,
): Promise<LiveShop[]> {
  const live: LiveShop[] = [];
  for (let start = 0; start < shops.length; start += CONNECT_CONCURRENCY) {
    const batch = shops.slice(start, start + CONNECT_CONCURRENCY).map(async (spec) => {
      const shop: LiveShop = {
        spec,
        sub: client(url, spec.sub.token, disruptions),
        mains: spec.mains.map((main) => client(url, main.token, disruptions)),
      };
      await Promise.all([shop.sub, ...shop.mains].map((device) => device.connect()));
      return shop;
    });
    live.push(...(await Promise.all(batch)));
  }
  return live;
}

export async function closeShops(shops: LiveShop[]): Promise<void> {
  await Promise.all(shops.flatMap((shop) => [shop.sub.close(), ...shop.mains.map((main) => main.close())]));
}

/** A notify as a waiter's handheld sends it; `t` (send time, performance.now()) and `n` ride in data. */
export function notifyInput(reqId: string, n: number, t: number): NotifyInput {
  return {
    req_id: reqId,
    table_id: 12,
    type: 'add_dish',
    status: 1,
    data: { t, n, dish: 'Kung Pao chicken', qty: 2, note: 'no peanuts' },
    user_info: { name: 'waiter-3', role: 'waiter' },
  };
}

/** The same load for the MQTT peer: the notify frame's JSON as the payload, same shape and size. */
export function notifyPayload(n: number, t: number): string {
  return JSON.stringify({ op: 'notify', ...notifyInput(`m-${n}`, n, t) });
}

/** The send time a message carries back (its data is returned exactly as sent). */
export function sentAtOf(data: Record<string, unknown>): number {
  return typeof data.t === 'number' ? data.t : Number.NaN;
}
