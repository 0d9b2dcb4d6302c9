import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Servers started by a file are stopped by that file; this only bounds a hung teardown.
    teardownTimeout: 20_000,
  },
});
