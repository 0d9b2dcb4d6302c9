import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './lib/logger.ts';
import { whereToGo } from './transports/home.ts';

const startedAt = performance.now();
let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
const log = createLogger(config.LOG_LEVEL);
const app = await buildApp(config, log);
const url = await app.start();
// The last net under every request handler, once serving (a failed start still ends the
// process): an error that escapes one (a stream's error event nobody listened to, a promise
// nobody awaited) is logged, and the server keeps serving the others instead of ending every
// connection with it. Each such log line is a bug to fix.
process.on('uncaughtException', (err) => log.fatal({ err }, 'uncaught exception; still serving'));
process.on('unhandledRejection', (err) => log.fatal({ err }, 'unhandled rejection; still serving'));
log.info({ startupMs: Math.round(performance.now() - startedAt) }, 'ready');
log.info(whereToGo(url));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
