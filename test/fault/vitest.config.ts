// The fault suite (SPEC §5): kills, cuts and poisons a broker of child processes under load. Its files end in
// `.fault.ts`, so the default `npm test` (test/**/*.test.ts) never runs them; `npm run test:fault` does, one file
// at a time: each file runs a whole broker and its load, and two at once would starve a 2-core machine.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/fault/**/*.fault.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: process.env.CI
      ? ['default', ['json', { outputFile: process.env.TEST_RESULTS_FILE ?? 'test-results-fault.json' }]]
      : ['default'],
  },
});
