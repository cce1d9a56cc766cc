import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, nextAttempt, STABLE_CONNECTION_MS } from '#client';

const policy = { baseMs: 100, maxMs: 5_000 };

describe('when the client waits before reconnecting', () => {
  it('waits between zero and the ceiling of the attempt (full jitter)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
          const delay = backoffDelayMs(attempt, policy, () => r);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(ceiling);
          expect(Number.isInteger(delay)).toBe(true);
        },
      ),
    );
  });

  it('doubles the ceiling with each attempt until maxMs', () => {
    const top = () => 0.999_999;
    expect(backoffDelayMs(0, policy, top)).toBe(99);
    expect(backoffDelayMs(1, policy, top)).toBe(199);
    expect(backoffDelayMs(2, policy, top)).toBe(399);
    expect(backoffDelayMs(6, policy, top)).toBe(4_999);
    expect(backoffDelayMs(7, policy, top)).toBe(4_999);
  });

  it('can reconnect at once, which is what spreads a crowd over the window', () => {
    expect(backoffDelayMs(5, policy, () => 0)).toBe(0);
  });

  it('stays finite for absurd attempt numbers', () => {
    expect(backoffDelayMs(10_000, policy, () => 0.5)).toBe(2_500);
    expect(backoffDelayMs(-3, policy, () => 0.5)).toBe(50);
  });
});

describe('when a connection closes', () => {
  it('starts the schedule over after a connection that stayed up', () => {
    expect(nextAttempt(7, STABLE_CONNECTION_MS)).toBe(0);
  });

  it('keeps climbing after a connection that dropped soon after login or never logged in', () => {
    expect(nextAttempt(-1, 0)).toBe(0);
    expect(nextAttempt(0, 0)).toBe(1);
    expect(nextAttempt(3, STABLE_CONNECTION_MS - 1)).toBe(4);
  });
});
