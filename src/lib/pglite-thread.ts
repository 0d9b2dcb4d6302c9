import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { servePGlite } from './pglite-server.ts';

/**
 * Runs inside a worker thread (see embedded-db.ts): PGlite executes SQL synchronously in
 * WASM, so on the server's own thread every statement, checkpoint and vacuum would stall
 * message delivery. Here it has a thread of its own and the server reaches it over the
 * loopback wire protocol as before.
 */
const { dir } = workerData as { dir: string };
const port = parentPort!;
const lite = await PGlite.create(dir);
const server = await servePGlite(lite);
port.postMessage({ url: server.url });
port.once('message', async () => {
  await server.close();
  await lite.close();
  port.close();
});
