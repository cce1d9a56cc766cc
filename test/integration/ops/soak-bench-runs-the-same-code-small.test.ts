// The soak benchmark (issue 19) at a CI size, through the same code `npm run bench:soak` runs: real broker
// processes, a steady load with every main acking, a restart half-way, samples of every figure, the growth slopes,
// and the table and chart it writes. Figures are not asserted (speed is for benchmarks); that it measures, loses
// nothing and renders is.
import { describe, expect, inject, it } from 'vitest';
import { chartOf, renderSoak, runSoak } from '../../../bench/soak';

const onCluster = inject('redisClusterNodes') !== '';

describe.skipIf(onCluster)('the soak benchmark, small', () => {
  it('samples every figure across a dispatcher restart, loses no message, and renders its table and chart', async () => {
    const lines: string[] = [];
    const result = await runSoak({
      minutes: 0.25,
      rate: 40,
      shops: 4,
      sampleS: 3,
      restart: 'dispatcher',
      retentionMs: 2000,
      redisUrl: inject('redisUrl'),
      databaseUrl: inject('databaseUrl'),
      log: (line) => lines.push(line),
    });
    expect(result.restartAtS).toBe(8);
    expect(lines.some((l) => l.includes('restarting the dispatcher'))).toBe(true);
    expect(result.samples.length).toBeGreaterThanOrEqual(5);
    for (const s of result.samples) {
      for (const value of [
        s.redisUsedMemory,
        s.ownBytes,
        s.postgresBytes,
        ...Object.values(s.rss),
        ...Object.values(s.heap),
      ])
        expect(value).toBeGreaterThan(0);
    }
    expect(result.sent).toBeGreaterThan(0);
    expect(result.refused).toBe(0);
    expect(result.notified).toBe(result.sent);
    expect(result.missing).toBe(0);
    expect(result.received).toBe(result.notified * 2);
    expect(result.growth.map((g) => g.figure)).toContain("Redis, the broker's own keys (bytes)");
    for (const g of result.growth) expect(Number.isFinite(g.perNotify)).toBe(true);

    const table = renderSoak(result);
    expect(table.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toHaveLength(result.samples.length);
    const svg = chartOf(result);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)?.length).toBe(12); // six panels: 1 + 1 + 3 + 3 + 1 + 3 lines
  }, 120_000);
});
