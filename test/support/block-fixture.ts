// What a describe block (or a file) shares across its tests: set up once before them, torn down once after them.
// The helpers that start a broker, a log or a fault cluster for a block are all this shape.
import { afterAll, beforeAll } from 'vitest';

/**
 * Registers a beforeAll that fills in the fixture and an afterAll that tears it down (also after a set-up that
 * failed half-way, so tearDown must allow for missing fields). Answers the fixture, to be read in hooks and tests.
 */
export function blockFixture<T extends object>(
  setUp: (fixture: T) => Promise<void>,
  tearDown: (fixture: Partial<T>) => Promise<void>,
): T {
  // Empty until beforeAll has run; nothing reads it before then, since tests run after their block's beforeAll.
  const fixture = {} as T;
  beforeAll(() => setUp(fixture));
  afterAll(() => tearDown(fixture));
  return fixture;
}
