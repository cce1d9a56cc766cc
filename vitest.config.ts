import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // CI also writes test-results.json, from which .ci/run prints "N passed, N failed".
    reporters: process.env.CI
      ? ['default', ['json', { outputFile: process.env.TEST_RESULTS_FILE ?? 'test-results.json' }]]
      : ['default'],
  },
});
