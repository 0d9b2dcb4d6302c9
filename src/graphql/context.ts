import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Storage } from '../storage/storage.ts';
import type { User } from '../generated/prisma/client.ts';
import type { Db } from '../lib/db.ts';
import type { EventBus } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import type { RateLimits } from '../lib/rate-limit.ts';
import type { VapidKeys } from '../lib/secrets.ts';
import type { PushResult } from './subscription-feed.ts';
import { TokenError, type TokenService } from '../lib/tokens.ts';
import type { CallTimer } from '../modules/calls/timer.ts';
import type { TypingTimers } from '../modules/conversations/typing.ts';
import type { SessionCache, SessionRow } from '../modules/auth/sessions.ts';
import type { LoginThrottle } from '../modules/auth/throttle.ts';
import type { DeliveryTracker } from '../modules/messages/delivery.ts';
import type { MessageWriter } from '../modules/messages/writer.ts';
import type { PresenceService } from '../modules/presence/service.ts';

/** What one running instance holds; built once by buildApp. */
export interface Services {
  config: Config;
  db: Db;
  /** The same database through plain `pg`, for the few hot statements Prisma makes slow. */
  sql: pg.Pool;
  bus: EventBus;
  presence: PresenceService;
  typing: TypingTimers;
  delivery: DeliveryTracker;
  messageWriter: MessageWriter;
  calls: CallTimer;
  tokens: TokenService;
  /** The device and user rows behind access tokens, kept between operations. */
  sessions: SessionCache;
  storage: Storage;
  vapid: VapidKeys;
  /** Limits counted per user or client address (in Redis when instances share one). */
  limits: RateLimits;
  /** Failed sign-ins per account and address, and the locks they earn. */
  loginThrottle: LoginThrottle;
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

export interface Viewer {
  id: number;
  role: 'USER' | 'ADMIN';
  deviceId: number;
  /** The user's row as read when the request was authenticated. */
  user: User;
}

/** One per operation (HTTP request, WebSocket subscription, later each dialect call). */
export interface Context extends Services {
  /** The instance's logger with this operation's request id on every line. */
  log: Logger;
  viewer: Viewer | null;
  /** Why a presented token was not accepted, so "sign in" errors can say it. */
  authProblem: string | null;
  requestId: string;
  /** Where the client connects from ('unknown' for in-process work), for per-client limits. */
  clientAddress: string;
  /** Aborts once the client is gone, so the operation's remaining work can stop. */
  clientGone?: AbortSignal;
  /** This server's origin as the client reached it, for absolute links (PUBLIC_URL wins). */
  origin: string;
  /** Per-operation DataLoaders, made on first use by `loader()`. */
  loaders: Map<string, DataLoader<unknown, unknown>>;
  /** A subscription's direct line to its client, where the transport has one (graphql-ws). */
  pushResult?: PushResult;
}

/**
 * The operation's DataLoader named `name`, made on first use. Loaders batch the lookups of
 * one tick into one query; they do not cache, because a subscription's context lives for many
 * events and must not serve stale rows.
 */
export function loader<K, V>(ctx: Context, name: string, batch: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V> {
  let existing = ctx.loaders.get(name) as DataLoader<K, V> | undefined;
  if (!existing) {
    existing = new DataLoader<K, V>(batch, { cache: false });
    ctx.loaders.set(name, existing as DataLoader<unknown, unknown>);
  }
  return existing;
}

/** Accepts `Bearer <token>` or a bare token. */
export function bearerToken(header: unknown): string | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return (match ? match[1] : header).trim();
}

/**
 * Resolves the caller from an access token: the signature and expiry, then the device (not
 * logged out or revoked by refresh-token reuse) and the user (not banned): one query, then
 * remembered by `SessionCache` until a control event says the session or the user changed.
 * `expiresAt` (ms) is when the token stops working, for connections that outlive it.
 */
export async function authenticate(
  services: Services,
  token: string | null,
): Promise<{ viewer: Viewer | null; authProblem: string | null; expiresAt?: number }> {
  if (!token) return { viewer: null, authProblem: null };
  let claims;
  try {
    claims = services.tokens.verifyAccess(token);
  } catch (err) {
    const reason = err instanceof TokenError ? err.reason : 'invalid';
    return { viewer: null, authProblem: reason === 'expired' ? 'Access token expired' : 'Access token invalid' };
  }
  const row = await services.sessions.lookup(claims.sid, async () => {
    // Plain SQL: Prisma's query compiler costs more than this statement.
    const { rows } = await services.sql.query<SessionRow>({
      name: 'session-by-device',
      text: `SELECT u.*, d."revokedAt" AS "deviceRevokedAt"
             FROM "Device" d JOIN "User" u ON u.id = d."userId"
             WHERE d.id = $1`,
      values: [claims.sid],
    });
    return rows[0];
  });
  if (!row || row.deviceRevokedAt || String(row.id) !== claims.sub) {
    return { viewer: null, authProblem: 'Session ended; sign in again' };
  }
  if (row.status === 'BANNED') return { viewer: null, authProblem: 'This account is banned' };
  const { deviceRevokedAt: _revoked, ...user } = row;
  return { viewer: { id: user.id, role: user.role, deviceId: claims.sid, user }, authProblem: null, expiresAt: claims.exp * 1000 };
}

export async function createContext(
  services: Services,
  request: {
    authorization?: unknown;
    requestId?: string | null;
    host?: string | null;
    forwardedProto?: string | null;
    clientAddress?: string | null;
    signal?: AbortSignal | null;
  },
): Promise<Context> {
  const { viewer, authProblem } = await authenticate(services, bearerToken(request.authorization));
  const requestId = request.requestId || randomUUID();
  // The operation's own fields come before the spread and `log` replaces an existing key:
  // V8 (Node 20) adds new keys to a freshly spread copy slowly (about 25 µs here, for every
  // operation), while this order costs under one.
  return {
    viewer,
    authProblem,
    requestId,
    clientAddress: request.clientAddress ?? 'unknown',
    clientGone: request.signal ?? undefined,
    origin: services.config.PUBLIC_URL?.replace(/\/$/, '') ?? `${request.forwardedProto === 'https' ? 'https' : 'http'}://${request.host ?? `${services.config.HOST}:${services.config.PORT}`}`,
    loaders: new Map(),
    ...services,
    log: services.log.child({ requestId }),
  };
}
