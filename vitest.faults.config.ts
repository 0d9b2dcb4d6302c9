import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

// The fault suite (`npm run test:faults`): test/faults/*.fault.ts, which `npm test` does not
// pick up (its files end in .test.ts). It starts its own PostgreSQL, Redis and servers, and
// kills and restarts them, so its files run one at a time. The main config's settings (the
// graphql alias, forks) apply; spread rather than mergeConfig, which would add to `include`.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/faults/**/*.fault.ts'],
    fileParallelism: false,
    // A scenario takes 5 to 15 s, the setup about 10 s; these bound a hang, not a normal run,
    // and keep even a run of hangs within 5 minutes (45 + 6 × 35 + 45 s).
    testTimeout: 35_000,
    hookTimeout: 45_000,
  },
});
