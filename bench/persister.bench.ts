// How fast the persister projects a backlog: N events of busy shops (each notify has two main recipients and is
// acked by both, devices reconnect now and then) are appended to a fresh prefix, then one in-process persister
// projects them into a fresh database. Prints events/s. `npx tsx bench/persister.bench.ts [events] [batch]`.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { encodeEvent, Keys } from '#events';
import { start } from '#persister';
import { closeRedis, createLogger, createRedis, dropDatabase, loadConfig, type RedisClient } from '#runtime';
import { busyShopOps, shopLog } from '../test/support/shop-log';

export interface PersisterBenchOptions {
  redisUrl: string;
  /** Any database URL on the server; the bench creates and drops its own database beside it. */
  databaseUrl: string;
  events: number;
  batch: number;
  shards: number;
}

export interface PersisterBenchResult {
  events: number;
  byType: Record<string, number>;
  messageRows: number;
  batch: number;
  shards: number;
  projectSeconds: number;
  eventsPerS: number;
}

const SHOPS = 200;

export async function runPersisterBench(options: PersisterBenchOptions): Promise<PersisterBenchResult> {
  const name = `bench_persister_${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const databaseUrl = new URL(options.databaseUrl);
  databaseUrl.pathname = `/${name}`;
  const { config } = loadConfig({
    REDIS_URL: options.redisUrl,
    DATABASE_URL: databaseUrl.toString(),
    REDIS_PREFIX: name,
    SHARDS: String(options.shards),
    CONSUMER_BATCH: String(options.batch),
    LOG_LEVEL: 'warn',
    HEALTH_PORT: '0',
  });
  const log = createLogger(config.logLevel);
  const redis = createRedis(config.redis, log, { name: 'bench' });
  const keys = new Keys(config.redis.prefix, config.shards);
  try {
    // busyShopOps(k) appends about 3.05·k + 6 events per shop.
    const notifiesPerShop = Math.max(1, Math.round((options.events / SHOPS - 6) / 3.05));
    const byType: Record<string, number> = {};
    let total = 0;
    for (let shop = 0; shop < SHOPS; shop++) {
      const events = shopLog(busyShopOps(notifiesPerShop), { shopId: `shop-${shop}` });
      const pipeline = redis.pipeline();
      for (const event of events) {
        pipeline.xadd(keys.streamOfShop(event.shop_id), '*', ...encodeEvent(event));
        byType[event.type] = (byType[event.type] ?? 0) + 1;
      }
      await pipeline.exec();
      total += events.length;
    }

    const startedAt = process.hrtime.bigint();
    const persister = await start(config, { log, healthServer: false });
    try {
      await persister.whenCaughtUp(600_000);
    } finally {
      await persister.stop();
    }
    const projectSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const messageRows = await countMessages(databaseUrl.toString());
    return {
      events: total,
      byType,
      messageRows,
      batch: options.batch,
      shards: options.shards,
      projectSeconds,
      eventsPerS: Math.round(total / projectSeconds),
    };
  } finally {
    await deleteKeys(redis, `${name}:*`);
    await closeRedis(redis);
    await dropDatabase(databaseUrl.toString());
  }
}

export function printPersisterBench(result: PersisterBenchResult): void {
  const mix = Object.entries(result.byType)
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  console.log(
    `persister: ${result.events} events (${mix}) → ${result.messageRows} message rows, projected in ` +
      `${result.projectSeconds.toFixed(2)} s = ${result.eventsPerS} events/s ` +
      `(one process, CONSUMER_BATCH ${result.batch}, ${result.shards} shards, start-up included)`,
  );
}

async function countMessages(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query('SELECT count(*)::int AS n FROM messages')).rows[0].n;
  } finally {
    await client.end();
  }
}

async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  if (!('scanStream' in redis)) return;
  for await (const batch of redis.scanStream({ match: pattern, count: 1000 })) {
    const found = batch as string[];
    if (found.length > 0) await redis.unlink(...found);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // A bench is a command line of its own: like the CLI, it may read the environment.
  const result = await runPersisterBench({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    events: Number(process.argv[2] ?? 50_000),
    batch: Number(process.argv[3] ?? 500),
    shards: 16,
  });
  printPersisterBench(result);
}
