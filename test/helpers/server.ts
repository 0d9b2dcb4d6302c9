import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildApp, type App, type AppOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/lib/logger.ts';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-0123456789';

export interface TestServer {
  url: string;
  wsUrl: string;
  app: App;
  env: Record<string, string>;
  dataDir: string;
  stop(): Promise<void>;
}

/** True when the suite runs against real PostgreSQL and Redis (CI's first pass). */
export const usingServices = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);

/**
 * Starts a real instance on a free port: embedded PGlite in a fresh directory and in-process
 * pub/sub, or the PostgreSQL / Redis named by DATABASE_URL / REDIS_URL when they are set.
 */
export async function startServer(env: Record<string, string> = {}, options: AppOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'chat-test-'));
  const fullEnv: Record<string, string> = {
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMITS: 'off',
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...env,
  };
  const config = loadConfig(fullEnv);
  const app = await buildApp(config, createLogger(config.LOG_LEVEL), options);
  const url = await app.start(0, '127.0.0.1');
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    app,
    env: fullEnv,
    dataDir,
    async stop() {
      await app.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A name no other test (or earlier run on the same database) has used. */
export function uniqueName(prefix = 'user'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/**
 * A new, empty database next to DATABASE_URL's (its URL, and a function that drops it). For
 * suites whose servers must not share their database with the other suites' servers: two
 * instances migrating it together, or consumers (webhooks, push) whose deliveries another
 * suite's server, configured otherwise, would claim and fail.
 */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const url = new URL(process.env.DATABASE_URL!);
  const name = uniqueName('fresh');
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * For a suite whose servers must have a database of their own (see `freshDatabase`): against
 * PostgreSQL, the env that gives them one, and its removal; embedded, each server has its own.
 */
export async function databaseOfItsOwn(): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  if (!process.env.DATABASE_URL) return { env: {}, drop: async () => {} };
  const database = await freshDatabase();
  return { env: { DATABASE_URL: database.url }, drop: database.drop };
}
