// `broker token`: registers a device through the event log (as the api does) and prints its token; with --rotate,
// gives a registered device a new token (DeviceTokenRotated) and closes the socket of the old one with 4403.
import type { Command } from 'commander';
import { closeOnEdge, EventLog, rotateDeviceToken } from '#eventlog';
import { BrokerError, createEvent, ERRORS, Identifier, Keys, newEventId, normaliseDeviceType } from '#events';
import {
  type Config,
  closeRedis,
  createRedis,
  DeviceTokens,
  describeRedis,
  type Logger,
  type RedisClient,
  START_HINT,
  whenRedisReady,
} from '#runtime';
import { exitingTwoOnBadArguments } from './operator';
import { setup } from './setup';

const ID = new RegExp(Identifier.pattern ?? '');

interface TokenOptions {
  shop: string;
  client: string;
  type?: string;
  rotate?: boolean;
}

export function registerToken(program: Command): void {
  const command = program
    .command('token')
    .description(
      'register a device (DeviceRegistered) and print its device token; with --rotate, print a new token for a ' +
        'registered device (DeviceTokenRotated): its old token is refused from then on',
    )
    .requiredOption('--shop <shop_id>', 'shop id')
    .requiredOption('--client <client_id>', 'client id, unique within the shop')
    .option('--type <type>', 'main (cashier, 主) or sub (waiter, 副); needed to register')
    .option('--rotate', 'rotate the token of a registered device (keeps its type and pending messages)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ broker token --shop shop-1 --client cashier-1 --type main\n' +
        '  $ broker token --shop shop-1 --client cashier-1 --rotate',
    )
    // SPEC §7: a bad argument is one line and exit code 2, without the usage text after it.
    .showHelpAfterError(false);
  exitingTwoOnBadArguments(command).action(async (options: TokenOptions) => {
    if (!ID.test(options.shop) || !ID.test(options.client)) {
      command.error('broker token: --shop and --client take 1-64 of A-Z a-z 0-9 _ . : -', { exitCode: 2 });
    }
    if (options.rotate && options.type !== undefined) {
      command.error('broker token: --rotate keeps the registered type; leave out --type', { exitCode: 2 });
    }
    if (!options.rotate && !['main', 'sub', '主', '副'].includes(options.type ?? '')) {
      command.error('broker token: --type is main, sub, 主 or 副', { exitCode: 2 });
    }
    const { config, log } = setup({ logsTo: 'stderr' });
    const redis = createRedis(config.redis, log.child({}, { level: 'silent' }), { name: 'cli-token' });
    try {
      await whenRedisReadyOrGiveUp(redis, config);
      const keys = new Keys(config.redis.prefix, config.shards);
      const tokens = new DeviceTokens(config.tokens.secret, config.tokens.ttlS);
      const token = options.rotate
        ? await rotate(redis, keys, tokens, log, options)
        : await register(redis, keys, tokens, options);
      process.stdout.write(`${token}\n`);
    } finally {
      await closeRedis(redis);
    }
  });
}

const CONNECT_TIMEOUT_MS = 5000;

/** Like the operator commands, a token command gives up on Redis after a few seconds, in one line (exit 3). */
async function whenRedisReadyOrGiveUp(redis: RedisClient, config: Config): Promise<void> {
  let reason = 'no answer';
  redis.on('error', (err: Error) => {
    reason = err.message;
  });
  try {
    await whenRedisReady(redis, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
  } catch {
    throw new BrokerError(
      'LOG_UNAVAILABLE',
      `Redis unreachable at ${describeRedis(config.redis)} (${reason}); gave up after ` +
        `${CONNECT_TIMEOUT_MS / 1000} s, nothing was recorded — ${START_HINT}`,
    );
  }
}

async function register(redis: RedisClient, keys: Keys, tokens: DeviceTokens, options: TokenOptions) {
  const type = normaliseDeviceType(options.type as 'main' | 'sub');
  const tokenId = newEventId();
  await new EventLog(redis, keys).register(
    createEvent({
      type: 'DeviceRegistered',
      shopId: options.shop,
      source: 'cli',
      data: { client_id: options.client, type, token_id: tokenId },
    }),
  );
  return tokens.mint({ shop_id: options.shop, client_id: options.client, type, token_id: tokenId });
}

async function rotate(
  redis: RedisClient,
  keys: Keys,
  tokens: DeviceTokens,
  log: Logger,
  options: TokenOptions,
) {
  const tokenId = newEventId();
  const event = createEvent({
    type: 'DeviceTokenRotated',
    shopId: options.shop,
    source: 'cli',
    data: { client_id: options.client, token_id: tokenId },
  });
  let rotation: Awaited<ReturnType<typeof rotateDeviceToken>>;
  try {
    rotation = await rotateDeviceToken(redis, keys, event);
  } catch (err) {
    if (err instanceof BrokerError && err.code === 'NOT_FOUND') {
      throw new BrokerError(
        'NOT_FOUND',
        `device ${options.client} is not registered in shop ${options.shop} ` +
          '(register it: broker token --shop … --client … --type main|sub)',
      );
    }
    throw err;
  }
  const token = await tokens.mint({
    shop_id: options.shop,
    client_id: options.client,
    type: rotation.device.type,
    token_id: tokenId,
  });
  const live = rotation.live;
  if (live !== null) {
    // The rotation is recorded: a close that does not arrive only leaves the old socket open until its next
    // notify or login, which the registry refuses. Say so, and still print the token.
    const line = {
      shop_id: live.shop_id,
      client_id: live.client_id,
      conn_id: live.conn_id,
      edge_id: live.edge_id,
    };
    try {
      if (!(await closeOnEdge(redis, keys, live, ERRORS.DEVICE_REVOKED.close, 'token rotated')))
        log.warn(line, 'token rotated, but no edge took the close command for the old socket');
    } catch (err) {
      log.warn(
        { ...line, reason: (err as Error).message },
        'token rotated, but the close command was not sent',
      );
    }
  }
  return token;
}
