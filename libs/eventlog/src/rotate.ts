// Token rotation in the log: one atomic Redis step (rotate-3.lua) that gives a registered device a new token id
// and appends DeviceTokenRotated. Minting the token and closing the old socket are the caller's.
import { BrokerError, type EventOf, type Keys, type RegisteredDevice } from '#events';
import type { RedisClient } from '#runtime';
import type { Presence } from './append';
import { asLogError } from './failures';
import { runScript } from './scripts';

export interface Rotation {
  /** The registry entry as it is now: the device's type and registered_at, and the new token id. */
  device: RegisteredDevice;
  /** The connection logged in with an older token, if any: the caller closes it with 4403. */
  live: Presence | null;
}

/**
 * Rotates a device's token to `event.data.token_id`; the older tokens are refused at the next login or notify.
 * NOT_FOUND when the device is not registered (never, or revoked); LOG_UNAVAILABLE when Redis is away.
 */
export async function rotateDeviceToken(
  redis: RedisClient,
  keys: Keys,
  event: EventOf<'DeviceTokenRotated'>,
): Promise<Rotation> {
  const shop = event.shop_id;
  let reply: Array<string | number>;
  try {
    reply = await runScript(
      redis,
      'rotate-3',
      [keys.streamOfShop(shop), keys.devices(shop), keys.presence(shop)],
      [event.data.client_id, event.data.token_id, JSON.stringify(event)],
    );
  } catch (err) {
    throw asLogError(err);
  }
  if (reply[0] === -1)
    throw new BrokerError('NOT_FOUND', `no active device ${event.data.client_id} in shop ${shop}`);
  return {
    device: JSON.parse(String(reply[2])) as RegisteredDevice,
    live: reply[3] ? (JSON.parse(String(reply[3])) as Presence) : null,
  };
}
