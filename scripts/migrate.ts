// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or the embedded database).
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/lib/db.ts';
import { createLogger } from '../src/lib/logger.ts';
import { migrate } from '../src/lib/migrate.ts';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL);
const db = await openDatabase(config, log);
try {
  const ran = await migrate(db.pool, log);
  log.info({ applied: ran.length }, ran.length ? 'migrations applied' : 'database is up to date');
} finally {
  await db.close();
}
