import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Config } from '../config.ts';
import type { Logger } from './logger.ts';
import { logLevelOf } from './errors.ts';

export type Db = PrismaClient;

export interface Database {
  prisma: PrismaClient;
  /** Raw pool, used by the migration runner and the health check. */
  pool: pg.Pool;
  embedded: boolean;
  close(): Promise<void>;
}

const TIMESTAMP_WITHOUT_TIME_ZONE = 1114;

/**
 * Timestamps are stored as UTC in columns without a time zone (Prisma's convention); plain pg
 * would read them as local time. Prisma's adapter passes its own parsers, so this only
 * affects our raw queries on the pool.
 */
const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
  oid === TIMESTAMP_WITHOUT_TIME_ZONE && format !== 'binary'
    ? (value: string) => new Date(`${value.replace(' ', 'T')}Z`)
    : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;

/**
 * PostgreSQL through `pg` when DATABASE_URL is set; otherwise PGlite (PostgreSQL compiled to
 * WASM) stored under DATA_DIR, run on its own thread and served on a private loopback port,
 * so the same driver adapter, SQL and migrations serve both modes.
 */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  let stopEmbedded: () => Promise<void> = async () => {};
  let connectionString = config.DATABASE_URL;
  const embedded = !connectionString;
  if (embedded) {
    const { startEmbeddedDatabase } = await import('./embedded-db.ts');
    const dir = path.resolve(config.DATA_DIR, 'pglite');
    await mkdir(dir, { recursive: true });
    const server = await startEmbeddedDatabase(dir);
    connectionString = server.url;
    log.info({ dir }, 'embedded PGlite database started');
    stopEmbedded = () => server.close();
  }
  // PGlite is one backend: a single pooled connection, kept open, keeps every query in order on it.
  const pool = new pg.Pool({
    connectionString,
    types: { getTypeParser },
    ...(embedded ? { max: 1, idleTimeoutMillis: 0 } : { max: config.DATABASE_POOL_SIZE }),
  });
  // An idle connection the database ended (a restart, an outage): the pool opens another when
  // one is next needed, so that is a warning, not an error.
  pool.on('error', (err) => log[logLevelOf(err)]({ err }, 'database connection lost'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    pool,
    embedded,
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => {});
      await stopEmbedded();
    },
  };
}
