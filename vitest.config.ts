import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for every package (it has no "exports" map); Vite
    // would hand our sources the ESM build, and two copies of graphql reject each other's
    // schemas. Point our sources at the same file Node uses.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Servers started by a file are stopped by that file; this only bounds a hung teardown.
    teardownTimeout: 20_000,
  },
});
