// Latency samples → percentiles, and rates. Samples are kept whole (a run holds at most a few hundred thousand),
// so the percentiles are exact, not bucketed.

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class Samples {
  private values: number[] = [];
  private sorted: number[] | null = null;

  add(value: number): void {
    this.values.push(value);
    this.sorted = null;
  }

  get count(): number {
    return this.values.length;
  }

  /** The q-quantile (0 ≤ q ≤ 1), nearest rank. NaN when empty. */
  quantile(q: number): number {
    const sorted = this.sortedValues();
    if (sorted.length === 0) return Number.NaN;
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[rank]!;
  }

  summary(): Summary {
    const sorted = this.sortedValues();
    const sum = sorted.reduce((a, b) => a + b, 0);
    return {
      count: sorted.length,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
      mean: sorted.length ? sum / sorted.length : Number.NaN,
    };
  }

  /** Points of the percentile curve, for the chart: [q, latency] at q = 0 … 1 − 10⁻⁴ on a log scale of 1/(1−q). */
  curve(): Array<[number, number]> {
    const points: Array<[number, number]> = [];
    const maxNines = Math.min(4, Math.log10(Math.max(10, this.count)));
    for (let step = 0; step <= maxNines * 20; step++) {
      const q = 1 - 10 ** (-step / 20);
      points.push([q, this.quantile(q)]);
    }
    return points;
  }

  private sortedValues(): number[] {
    if (this.sorted === null) this.sorted = [...this.values].sort((a, b) => a - b);
    return this.sorted;
  }
}

export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
