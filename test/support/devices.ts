// Registering devices for a test the way the api does (DeviceRegistered through the log, a minted token),
// without needing the api running.

import { EventLog } from '#eventlog';
import { createEvent, type DeviceType, newEventId } from '#events';
import { DeviceTokens } from '#runtime';
import type { TestContext } from './context';

export async function registerDevice(
  ctx: TestContext,
  shopId: string,
  clientId: string,
  type: DeviceType,
  options: { legacy?: boolean } = {},
): Promise<string> {
  const tokenId = newEventId();
  await new EventLog(ctx.redis, ctx.keys).register(
    createEvent({
      type: 'DeviceRegistered',
      shopId,
      source: 'api',
      data: { client_id: clientId, type, token_id: tokenId, ...(options.legacy ? { legacy: true } : {}) },
    }),
  );
  return new DeviceTokens(ctx.config.tokens.secret, ctx.config.tokens.ttlS).mint({
    shop_id: shopId,
    client_id: clientId,
    type,
    token_id: tokenId,
  });
}

/** The token id (jti) a device token carries, read from its payload without verifying it. */
export function tokenIdOf(token: string): string {
  const payload = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString();
  return (JSON.parse(payload) as { jti: string }).jti;
}
