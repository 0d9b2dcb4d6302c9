import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Db } from '../lib/db.ts';
import type { EventBus } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import type { RateLimits } from '../lib/rate-limit.ts';
import type { VapidKeys } from '../lib/secrets.ts';
import type { TokenService } from '../lib/tokens.ts';
import type { Storage } from '../storage/storage.ts';

/**
 * What one running instance holds, built once by buildApp (app.ts) and handed to every
 * operation's context. The shared infrastructure is listed here; each module adds what it
 * owns beside its own code, with
 * `declare module '../../services/services.ts' { interface Services { … } }`
 * (presence, typing, delivery, messageWriter, calls, sessions, loginThrottle), so this folder
 * needs nothing of the modules while they all build on it.
 */
export interface Services {
  config: Config;
  db: Db;
  /** The same database through plain `pg`, for the few hot statements Prisma makes slow. */
  sql: pg.Pool;
  bus: EventBus;
  tokens: TokenService;
  storage: Storage;
  vapid: VapidKeys;
  /** Limits counted per user or client address (in Redis when instances share one). */
  limits: RateLimits;
  /** Counts /metrics shows. */
  counters: Counters;
  log: Logger;
}

/** Running counts of this instance, for /metrics. */
export interface Counters {
  /** Queries and mutations stopped by the time budget, and because their client was gone. */
  operationsTimedOut: number;
  operationsAbandoned: number;
}
