import { Worker } from 'node:worker_threads';

/** Starts PGlite on its own thread (see pglite-thread.ts) and returns its loopback address. */
export async function startEmbeddedDatabase(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const worker = new Worker(new URL('./pglite-thread.mjs', import.meta.url), { workerData: { dir } });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    worker.once('message', (ready: { url: string }) => resolve(ready.url));
    // After start-up a failure of the thread surfaces as connection errors on the pool, which are logged.
    worker.on('error', reject);
    void exited.then(() => reject(new Error('the embedded database thread exited while starting')));
  });
  return {
    url,
    async close() {
      worker.postMessage('close');
      await exited;
    },
  };
}
