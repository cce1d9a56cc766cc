// `broker token`: registers a device through the event log (as the api does) and prints its token.
import type { Command } from 'commander';
import { EventLog } from '#eventlog';
import { createEvent, Identifier, Keys, newEventId, normaliseDeviceType } from '#events';
import { closeRedis, createRedis, DeviceTokens, whenRedisReady } from '#runtime';
import { setup } from './setup';

const ID = new RegExp(Identifier.pattern ?? '');

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('register a device (DeviceRegistered) and print its device token')
    .requiredOption('--shop <shop_id>', 'shop id')
    .requiredOption('--client <client_id>', 'client id, unique within the shop')
    .requiredOption('--type <type>', 'main (cashier, 主) or sub (waiter, 副)')
    .addHelpText('after', '\nExample:\n  $ broker token --shop shop-1 --client cashier-1 --type main')
    .action(async (options: { shop: string; client: string; type: string }) => {
      if (!ID.test(options.shop) || !ID.test(options.client)) {
        program.error('broker token: --shop and --client take 1-64 of A-Z a-z 0-9 _ . : -', { exitCode: 2 });
      }
      if (!['main', 'sub', '主', '副'].includes(options.type)) {
        program.error('broker token: --type is main, sub, 主 or 副', { exitCode: 2 });
      }
      const type = normaliseDeviceType(options.type as 'main' | 'sub');
      const { config, log } = setup({ logsTo: 'stderr' });
      const redis = createRedis(config.redis, log, { name: 'cli-token' });
      try {
        await whenRedisReady(redis);
        const tokenId = newEventId();
        await new EventLog(redis, new Keys(config.redis.prefix, config.shards)).register(
          createEvent({
            type: 'DeviceRegistered',
            shopId: options.shop,
            source: 'cli',
            data: { client_id: options.client, type, token_id: tokenId },
          }),
        );
        const token = await new DeviceTokens(config.tokens.secret, config.tokens.ttlS).mint({
          shop_id: options.shop,
          client_id: options.client,
          type,
          token_id: tokenId,
        });
        process.stdout.write(`${token}\n`);
      } finally {
        await closeRedis(redis);
      }
    });
}
