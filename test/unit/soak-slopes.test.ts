// The soak benchmark's slopes (issue 19): Redis memory under steady load is a saw-tooth (the streams fill, a
// retention round trims them), so a line fitted to every sample moves with the window's phase; the floor's slope
// (the samples just after each trim) is the growth underneath.
import { describe, expect, it } from 'vitest';
import { floorOf, slope } from '../../bench/soak';

/** A saw-tooth of `height` and `period` samples riding on a line of `rise` per sample. */
function sawTooth(
  samples: number,
  period: number,
  height: number,
  rise: number,
  phase = 0,
): Array<[number, number]> {
  return Array.from({ length: samples }, (_, t) => [
    t,
    rise * t + (((t + phase) % period) / (period - 1)) * height,
  ]);
}

describe('the soak slopes', () => {
  it('finds the rise under a saw-tooth from the floor, whatever its phase, where a fit to every sample does not', () => {
    const fits = [0, 1, 2].map((phase) => slope(sawTooth(31, 3, 24e6, 1_000, phase)));
    expect(Math.max(...fits) - Math.min(...fits)).toBeGreaterThan(10_000); // the phase moves the plain fit by far more than the rise
    for (const phase of [0, 1, 2]) {
      const floor = floorOf(sawTooth(31, 3, 24e6, 1_000, phase));
      expect(floor.length).toBeGreaterThanOrEqual(9);
      expect(slope(floor)).toBeCloseTo(1_000, 6);
    }
  });

  it('shows a leak in the floor as well', () => {
    expect(slope(floorOf(sawTooth(30, 3, 24e6, 50_000)))).toBeCloseTo(50_000, 6);
  });

  it('has no floor without a drop', () => {
    expect(
      floorOf([
        [0, 1],
        [1, 2],
        [2, 3],
      ]),
    ).toEqual([]);
    expect(slope([])).toBe(0);
  });
});
