// `broker replay` over a history whose older half is only in the archive (the streams were trimmed below archived
// positions) and whose newer half is in both, or only in the streams: every filter returns exactly its events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent } from '#events';
import { createTestContext, type TestContext } from '#test-support';
import {
  type Appended,
  appendAll,
  appendAndProject,
  parseLines,
  runBroker,
  shopsLog,
  trimOlderHalf,
} from './harness';

let ctx: TestContext;
let appended: Appended[];
let all: BrokerEvent[];

const byTime = (a: BrokerEvent, b: BrokerEvent) =>
  Date.parse(a.at) - Date.parse(b.at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

beforeAll(async () => {
  ctx = await createTestContext({ SHARDS: '8' }); // more shards than shops: some streams are empty
  // Appended in time order, as the broker appends them: log order and time agree within each stream.
  const events = shopsLog(12).sort(byTime);
  const cut = Math.floor(events.length * 0.8);
  appended = await appendAndProject(ctx, events.slice(0, cut));
  await trimOlderHalf(ctx, appended);
  // The newest events were never projected: they are only in the streams.
  appended.push(...(await appendAll(ctx.redis, ctx.keys, events.slice(cut))));
  all = appended.map((a) => a.event);
});
afterAll(async () => {
  await ctx.cleanup();
});

async function replay(...args: string[]): Promise<BrokerEvent[]> {
  const run = await runBroker(ctx, ['replay', ...args]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return parseLines(run.stdout);
}

describe('when part of the log is only in the archive', () => {
  it('the trimmed streams no longer hold the older events', async () => {
    let inStreams = 0;
    for (const shard of ctx.keys.allShards()) inStreams += await ctx.redis.xlen(ctx.keys.stream(shard));
    expect(inStreams).toBeLessThan(all.length * 0.7);
  });

  it('replays every event once, shops merged by time', async () => {
    expect(await replay()).toEqual([...all].sort(byTime));
  });

  it("replays one shop's events in its log order", async () => {
    expect(await replay('--shop', 'shop-b')).toEqual(all.filter((e) => e.shop_id === 'shop-b'));
  });

  it('keeps only the types asked for, repeated or comma-separated', async () => {
    const types = new Set(['NotifyRequested', 'MessageHandled', 'DeviceRevoked']);
    const expected = [...all].filter((e) => types.has(e.type)).sort(byTime);
    expect(await replay('--type', 'NotifyRequested,MessageHandled', '--type', 'DeviceRevoked')).toEqual(
      expected,
    );
  });

  it('keeps the time range, since inclusive and until exclusive', async () => {
    const sorted = [...all].sort(byTime);
    const since = sorted[40]!.at;
    const until = sorted[sorted.length - 30]!.at;
    const expected = sorted.filter((e) => e.at >= since && e.at < until);
    expect(expected.length).toBeGreaterThan(100);
    expect(await replay('--since', since, '--until', until)).toEqual(expected);
  });

  it('keeps the id range, both ends inclusive, with other filters', async () => {
    const shopC = all.filter((e) => e.shop_id === 'shop-c');
    const from = shopC[5]!.id;
    const to = shopC[shopC.length - 5]!.id;
    const expected = shopC.filter((e) => e.id >= from && e.id <= to && e.type === 'MessageDelivered');
    expect(expected.length).toBeGreaterThan(10);
    const got = await replay(
      '--shop',
      'shop-c',
      '--from',
      from.toLowerCase(),
      '--to',
      to,
      '--type',
      'MessageDelivered',
    );
    expect(got).toEqual(expected);
  });

  it('prints a table on request, one line per event under a header', async () => {
    const run = await runBroker(ctx, ['replay', '--shop', 'shop-a', '--format', 'table']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    const shopA = all.filter((e) => e.shop_id === 'shop-a');
    expect(lines[0]).toMatch(/^AT\s+SHOP\s+TYPE\s+ID\s+SOURCE\s+WHAT$/);
    expect(lines).toHaveLength(shopA.length + 1);
    expect(lines[1]).toContain(shopA[0]!.id);
    expect(run.stdout).toMatch(/NotifyRequested\s+\S+\s+edge:e1\s+dev-3 → dev-1,dev-2: add_dish/);
  });
});

describe('when an argument is wrong', () => {
  it('exits 2 and says which argument and why, printing nothing on stdout', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--type', 'NoSuchEvent'], /--type: unknown event type "NoSuchEvent"/],
      [
        ['--since', '2025-03-02T00:00:00Z', '--until', '2025-03-01T00:00:00Z'],
        /--since must be before --until/,
      ],
      [['--format', 'xml'], /--format is json or table/],
      [['--no-such-option'], /unknown option '--no-such-option'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runBroker(ctx, ['replay', ...args])));
    runs.forEach((run, i) => {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(cases[i]![1]);
      expect(run.stdout).toBe('');
    });
  }, 120_000); // four CLI processes at once
});
