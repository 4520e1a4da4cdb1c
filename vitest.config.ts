import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // One TMPDIR for the run, removed at its end (test/harness/global-tmp.ts).
    globalSetup: ['test/harness/global-tmp.ts'],
  },
});
