// What the operator-command tests share: a realistic log of a few shops projected by the real persister, part of
// it trimmed from the streams (so the history spans the archive and the streams), and the CLI as a child process.
import { spawn } from 'node:child_process';
import { type BrokerEvent, compareStreamIds } from '#events';
import { start } from '#persister';
import type { Env } from '#runtime';
import type { TestContext } from '#test-support';
import { busyShopOps, type ShopOp, shopLog } from '../../support/shop-log';
import { type Appended, appendAll } from '../persister/harness';

export { type Appended, appendAll };

const BIN = new URL('../../../bin/broker.mjs', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `broker <args>` with the test's environment (plus overrides) and waits for it to exit. */
export function runBroker(ctx: TestContext, args: string[], overrides: Env = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...ctx.env, ...overrides } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Notifies, acks, failures, handles, a revoke, a re-registration, a token rotation: every event type, every row kind. */
const CHURN: ShopOp[] = [
  { op: 'fail', pick: 1, attempts: 8 },
  { op: 'handle', pick: 2, status: 3 },
  { op: 'handle', pick: 2, status: 4 },
  { op: 'revoke', client: 2 },
  { op: 'rotate', client: 3 },
  { op: 'notify', client: 3 },
  { op: 'register', client: 2, type: 'main' },
  { op: 'login', client: 2 },
  { op: 'notify', client: 3 },
  { op: 'ack', client: 2, count: 2 },
  { op: 'close', client: 1 },
  { op: 'notify', client: 1 },
];

export const SHOPS = ['shop-a', 'shop-b', 'shop-c', 'shop-d'];

/** A few shops' days, their times interleaved across shops (each shop's own events 1 ms apart). */
export function shopsLog(notifies: number, startMs = Date.UTC(2025, 2, 1)): BrokerEvent[] {
  return SHOPS.flatMap((shopId, i) =>
    shopLog([...busyShopOps(notifies + i * 3), ...CHURN], { shopId, startMs: startMs + i * 7 }),
  );
}

/** Appends the log, lets the real persister project all of it, and stops the persister. */
export async function appendAndProject(ctx: TestContext, events: BrokerEvent[]): Promise<Appended[]> {
  const persister = await start(ctx.config, { log: ctx.log, healthServer: false });
  try {
    const appended = await appendAll(ctx.redis, ctx.keys, events);
    await persister.whenCaughtUp();
    return appended;
  } finally {
    await persister.stop();
  }
}

/**
 * Trims each shard's stream (XTRIM MINID) to keep only its newer half, as retention would once the older half
 * is archived. Answers the stream id each shard now starts at.
 */
export async function trimOlderHalf(ctx: TestContext, appended: Appended[]): Promise<Map<number, string>> {
  const kept = new Map<number, string>();
  for (const shard of ctx.keys.allShards()) {
    const ids = appended
      .filter((a) => a.shard === shard)
      .map((a) => a.streamId)
      .sort(compareStreamIds);
    if (ids.length < 2) continue;
    const minId = ids[Math.floor(ids.length / 2)]!;
    await ctx.redis.xtrim(ctx.keys.stream(shard), 'MINID', minId);
    kept.set(shard, minId);
  }
  return kept;
}

/** The JSON lines of a replay, parsed. */
export function parseLines(stdout: string): BrokerEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as BrokerEvent);
}
