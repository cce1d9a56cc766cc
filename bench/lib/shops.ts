// The shops of a run on live sockets: each shop's sub device sends notifies, its main devices receive and ack
// them. Scenarios plug their counting into the frame handlers.
import type { ShopSpec } from './fleet';
import { type ServerFrame, WsDevice } from './ws-device';

export interface LiveShop {
  spec: ShopSpec;
  sub: WsDevice;
  mains: WsDevice[];
}

/** The message frame a main device receives (the fields the benchmark reads). */
export interface MessageFrame extends ServerFrame {
  id: string;
  attempt: number;
  data: { t: number; n: number };
}

const CONNECT_CONCURRENCY = 100;

export async function connectShops(url: string, shops: ShopSpec[]): Promise<LiveShop[]> {
  const live: LiveShop[] = [];
  for (let start = 0; start < shops.length; start += CONNECT_CONCURRENCY) {
    const batch = shops.slice(start, start + CONNECT_CONCURRENCY).map(async (spec) => {
      const mains = await Promise.all(spec.mains.map((main) => WsDevice.open({ url, token: main.token })));
      const sub = await WsDevice.open({ url, token: spec.sub.token });
      return { spec, sub, mains };
    });
    live.push(...(await Promise.all(batch)));
  }
  return live;
}

export async function closeShops(shops: LiveShop[]): Promise<void> {
  await Promise.all(shops.flatMap((shop) => [shop.sub.close(), ...shop.mains.map((main) => main.close())]));
}

/** A notify as a waiter's handheld sends it; `t` (send time, performance.now()) rides in data. */
export function notifyFrame(reqId: string, n: number, t: number): object {
  return {
    op: 'notify',
    req_id: reqId,
    table_id: 12,
    type: 'add_dish',
    status: 1,
    data: { t, n, dish: 'Kung Pao chicken', qty: 2, note: 'no peanuts' },
    user_info: { name: 'waiter-3', role: 'waiter' },
  };
}

/** The same load as bytes, for the MQTT peer: one JSON payload of the same shape and size. */
export function notifyPayload(n: number, t: number): string {
  return JSON.stringify(notifyFrame(`m-${n}`, n, t));
}

export function isMessage(frame: ServerFrame): frame is MessageFrame {
  return frame.op === 'message';
}
