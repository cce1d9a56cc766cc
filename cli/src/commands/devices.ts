// `broker devices import <file>`: registers the devices of a CSV export of the original system's ws_devices table
// (SPEC §9), each as the api would (DeviceRegistered through the register script, a fresh token id), skipping those
// already registered, so a second run registers nothing new. Optionally marks them legacy and writes each new
// device's v1 token to a file. The summary goes to stdout; progress, warnings and logs to stderr.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { EventLog } from '#eventlog';
import { BrokerError, createEvent, Keys, newEventId, type RegisteredDevice } from '#events';
import { DeviceTokens, type RedisClient } from '#runtime';
import { EXIT, EXIT_HELP, exitingTwoOnBadArguments, openRedis, runOperator, usageError } from './operator';
import { progressOf } from './progress';
import { readWsDevices, type WsDevice } from './ws-devices-csv';

const EXAMPLES = `
Examples:
  $ broker devices import ws_devices.csv --legacy
  $ broker devices import ws_devices.csv --legacy --tokens tokens.csv

The file is a CSV export of ws_devices: shop_id, client_id, type (主, 副, main or sub) per row, with or without a
header (a header may name other columns too). Every row is checked first: one bad row and nothing is registered.
A device already registered is left as it is (a second run registers nothing); one registered with another type
or legacy mark is named on stderr. --tokens writes "shop_id,client_id,type,token" for each device registered now
(a new file, readable by its owner only); without it, a device gets its v1 token later with broker token --rotate.
${EXIT_HELP}`;

/** Registrations in flight at once: enough to hide the round trip, few enough to leave Redis to the broker. */
const PARALLEL = 16;

interface ImportOptions {
  legacy?: boolean;
  tokens?: string;
}

interface Tally {
  registered: number;
  existing: number;
  /** Registered before with another type or legacy mark: left as they are, and named. */
  different: string[];
}

export function registerDevices(program: Command): void {
  const devices = program.command('devices').description('manage devices in bulk');
  const command = devices
    .command('import')
    .description("register the devices of a CSV export of the original system's ws_devices table")
    .argument('<file>', 'CSV of shop_id, client_id, type')
    .option('--legacy', 'mark them legacy: they may log in over the original protocol (SPEC §9)')
    .option('--tokens <file>', "write each new device's v1 token to this new file")
    .addHelpText('after', EXAMPLES);
  exitingTwoOnBadArguments(command).action((file: string, options: ImportOptions) =>
    runOperator('devices import', async (session) => {
      const rows = readDevicesFile(file);
      const tokensOut = options.tokens === undefined ? null : openTokensFile(options.tokens);
      try {
        const redis = await openRedis(session, 'cli-devices-import');
        const { config } = session;
        const keys = new Keys(config.redis.prefix, config.shards);
        const registrar = {
          redis,
          keys,
          eventLog: new EventLog(redis, keys),
          tokens: new DeviceTokens(config.tokens.secret, config.tokens.ttlS),
          isLegacy: options.legacy === true,
          writeToken: (device: WsDevice, token: string) => {
            if (tokensOut !== null)
              writeSync(tokensOut, `${device.shop_id},${device.client_id},${device.type},${token}\n`);
          },
        };
        const progress = progressOf('import', 'devices', rows.devices.length, process.stderr.isTTY === true);
        const tally: Tally = { registered: 0, existing: 0, different: [] };
        let done = 0;
        for (const shop of groupByShop(rows.devices)) {
          const registry = await registryOf(redis, keys, shop[0]!.shop_id);
          for (let i = 0; i < shop.length; i += PARALLEL) {
            await Promise.all(
              shop.slice(i, i + PARALLEL).map((d) => importOne(registrar, registry, d, tally)),
            );
            done += Math.min(PARALLEL, shop.length - i);
            progress.update(done);
          }
        }
        progress.stop(done);
        for (const line of tally.different) process.stderr.write(`broker devices import: ${line}\n`);
        process.stdout.write(
          summaryOf(rows.devices.length + rows.repeated, tally, registrar.isLegacy, options.tokens),
        );
        return EXIT.ok;
      } finally {
        if (tokensOut !== null) closeSync(tokensOut);
      }
    }),
  );
}

function readDevicesFile(file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  const rows = readWsDevices(text);
  if (rows.problems.length > 0) {
    const more = rows.problems.length > 1 ? ` (and ${rows.problems.length - 1} more bad rows)` : '';
    throw usageError(`${file} ${rows.problems[0]}${more}; nothing registered`);
  }
  return rows;
}

/** A new file only, readable by its owner: tokens are secrets, and a second run must not overwrite the first's. */
function openTokensFile(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' ? 'exists already (it may hold tokens of an earlier run); name a new file' : code;
    throw usageError(`--tokens ${path} ${why}`);
  }
  writeSync(fd, 'shop_id,client_id,type,token\n');
  return fd;
}

function groupByShop(devices: WsDevice[]): WsDevice[][] {
  const shops = new Map<string, WsDevice[]>();
  for (const device of devices) {
    const list = shops.get(device.shop_id) ?? [];
    list.push(device);
    shops.set(device.shop_id, list);
  }
  return [...shops.values()];
}

async function registryOf(
  redis: RedisClient,
  keys: Keys,
  shopId: string,
): Promise<Map<string, RegisteredDevice>> {
  const entries = await redis.hgetall(keys.devices(shopId));
  return new Map(
    Object.entries(entries).map(([client, json]) => [client, JSON.parse(json) as RegisteredDevice]),
  );
}

interface Registrar {
  eventLog: EventLog;
  tokens: DeviceTokens;
  isLegacy: boolean;
  writeToken(device: WsDevice, token: string): void;
}

async function importOne(
  registrar: Registrar,
  registry: Map<string, RegisteredDevice>,
  device: WsDevice,
  tally: Tally,
): Promise<void> {
  const known = registry.get(device.client_id);
  if (known !== undefined) return countExisting(known, device, registrar.isLegacy, tally);
  const tokenId = newEventId();
  // Minted first: once the device is registered, nothing may stand between it and its token's line in the file.
  const token = await registrar.tokens.mint({
    shop_id: device.shop_id,
    client_id: device.client_id,
    type: device.type,
    token_id: tokenId,
  });
  const event = createEvent({
    type: 'DeviceRegistered',
    shopId: device.shop_id,
    source: 'cli',
    data: {
      client_id: device.client_id,
      type: device.type,
      token_id: tokenId,
      ...(registrar.isLegacy ? { legacy: true } : {}),
    },
  });
  try {
    await registrar.eventLog.register(event);
  } catch (err) {
    // Registered meanwhile (the api, another import): as good as found in the registry.
    if (err instanceof BrokerError && err.code === 'CONFLICT') {
      tally.existing += 1;
      return;
    }
    throw err;
  }
  tally.registered += 1;
  registrar.writeToken(device, token);
}

function countExisting(known: RegisteredDevice, device: WsDevice, isLegacy: boolean, tally: Tally): void {
  tally.existing += 1;
  const isSameLegacy = (known.legacy === true) === isLegacy;
  if (known.type === device.type && isSameLegacy) return;
  const registered = `${known.type}${known.legacy ? ', legacy' : ''}`;
  const wanted = `${device.type}${isLegacy ? ', legacy' : ''}`;
  tally.different.push(
    `${device.client_id} of shop ${device.shop_id} is registered (${registered}), not as the file says (${wanted}); ` +
      'left as it is (revoke it and import again to change it)',
  );
}

function summaryOf(rows: number, tally: Tally, isLegacy: boolean, tokensFile: string | undefined): string {
  const as = isLegacy ? ' (legacy)' : '';
  const tokens =
    tokensFile === undefined
      ? 'no tokens written (--tokens <file>, or broker token --rotate later)'
      : `${count(tally.registered, 'token')} written to ${tokensFile}`;
  const different = tally.different.length > 0 ? `, ${tally.different.length} of them otherwise` : '';
  return (
    `devices import: ${count(rows, 'row')}, ${count(tally.registered, 'device')} registered${as}, ` +
    `${tally.existing} already registered${different}; ${tokens}\n`
  );
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
