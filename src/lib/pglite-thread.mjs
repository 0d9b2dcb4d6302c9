// Entry of the embedded database's worker thread. Node 20 does not apply `--import tsx` to a
// worker's entry file, so this plain module loads the TypeScript one through tsx's API; it
// works the same under `tsx` and under Vitest.
import { tsImport } from 'tsx/esm/api';

await tsImport('./pglite-thread.ts', import.meta.url);
