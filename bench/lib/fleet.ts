// Registering the benchmark's shops and devices in-process, the way the api does (DeviceRegistered through the
// log, a minted token), so setting up 15,000 devices takes seconds instead of 15,000 CLI starts.
import { EventLog } from '#eventlog';
import { createEvent, type DeviceType, Keys, newEventId } from '#events';
import { closeRedis, createLogger, createRedis, DeviceTokens, loadConfig } from '#runtime';
import type { BenchEnv } from './broker';

export interface DeviceSpec {
  shopId: string;
  clientId: string;
  type: DeviceType;
  token: string;
}

/** A shop of the benchmark: one sub (the waiter's handheld, the sender) and its main devices (the cashiers). */
export interface ShopSpec {
  shopId: string;
  sub: DeviceSpec;
  mains: DeviceSpec[];
}

const CONCURRENCY = 200;

export async function registerShops(
  bench: BenchEnv,
  prefix: string,
  count: number,
  mainsPerShop = 2,
): Promise<ShopSpec[]> {
  const { config } = loadConfig(bench.env);
  const log = createLogger('warn');
  const redis = createRedis(config.redis, log, { name: 'bench-fleet' });
  const eventLog = new EventLog(redis, new Keys(config.redis.prefix, config.shards));
  const tokens = new DeviceTokens(config.tokens.secret, config.tokens.ttlS);
  async function register(shopId: string, clientId: string, type: DeviceType): Promise<DeviceSpec> {
    const tokenId = newEventId();
    await eventLog.register(
      createEvent({
        type: 'DeviceRegistered',
        shopId,
        source: 'api',
        data: { client_id: clientId, type, token_id: tokenId },
      }),
    );
    const token = await tokens.mint({ shop_id: shopId, client_id: clientId, type, token_id: tokenId });
    return { shopId, clientId, type, token };
  }
  try {
    const shops: ShopSpec[] = [];
    for (let start = 0; start < count; start += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, count - start) }, async (_, i) => {
        const shopId = `${prefix}-${start + i}`;
        const mains: DeviceSpec[] = [];
        for (let m = 1; m <= mainsPerShop; m++) mains.push(await register(shopId, `main-${m}`, 'main'));
        return { shopId, sub: await register(shopId, 'sub-1', 'sub'), mains };
      });
      shops.push(...(await Promise.all(batch)));
    }
    return shops;
  } finally {
    await closeRedis(redis);
  }
}
