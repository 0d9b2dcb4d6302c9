import { randomUUID } from 'node:crypto';
import { userEvent } from '../users/snapshot.ts';
import { recordEvent } from '../outbox/outbox.ts';
import { z } from 'zod';
import { AppError, conflict, forbidden, unauthenticated } from '../../lib/errors.ts';
import type { Context } from '../../schema/context.ts';
import type { Services } from '../../services/services.ts';
import type { Viewer } from '../viewer/viewer.ts';
import type { User } from '../../generated/prisma/client.ts';
import { announceSessionChange } from '../viewer/sessions.ts';
import { LoginThrottle } from './throttle.ts';
import { addressKey } from '../../lib/client-address.ts';
import { burnPasswordCheck, hashPassword, verifyPassword } from '../../lib/passwords.ts';
import { hashOpaqueToken, newOpaqueToken } from '../../lib/tokens.ts';
import { parseInput, uniqueViolation } from '../../lib/validation.ts';
import { displayNameRule, emailRule, passwordRule, phoneRule, profileRules, usernameRule } from '../users/rules.ts';

export interface Session {
  accessToken: string;
  refreshToken: string;
  user: User;
  viewer: Viewer;
}

const deviceIdRule = z.string().trim().min(1).max(128).nullish();

const registerRules = z.object({
  username: usernameRule,
  password: passwordRule,
  email: emailRule.nullish(),
  phone: phoneRule.nullish(),
  displayName: displayNameRule.nullish(),
  avatarUrl: profileRules.shape.avatarUrl,
  deviceId: deviceIdRule,
});

/**
 * Sign-up and sign-in tell a stranger some things by design (a taken email on sign-up, whether
 * an email account has a password on an email sign-in): counted per client address so they
 * cannot be asked at scale. Off with RATE_LIMITS=off, like every request limit.
 */
const AUTH_ATTEMPTS = { points: 20, seconds: 60 };

async function countAttempt(ctx: Context): Promise<void> {
  const result = await ctx.limits.consume('auth', AUTH_ATTEMPTS, `ip:${addressKey(ctx.clientAddress)}`);
  if (result && !result.allowed) {
    throw new AppError('RATE_LIMITED', `Too many sign-up and sign-in attempts; try again in ${result.retryAfter} seconds`, {
      retryAfter: result.retryAfter,
    });
  }
}

export async function register(ctx: Context, input: unknown): Promise<Session> {
  await countAttempt(ctx);
  const data = parseInput(registerRules, input);
  const taken = await ctx.db.user.findFirst({
    where: {
      OR: [
        { username: data.username },
        ...(data.email ? [{ email: data.email }] : []),
        ...(data.phone ? [{ phone: data.phone }] : []),
      ],
    },
    select: { username: true, email: true, phone: true },
  });
  if (taken) throw takenField(taken.username === data.username ? 'username' : taken.email === data.email ? 'email' : 'phone');
  let user: User;
  try {
    const passwordHash = await hashPassword(data.password);
    user = await ctx.db.$transaction(async (tx) => {
      const created = await tx.user.create({
        data: {
          username: data.username,
          email: data.email ?? null,
          phone: data.phone ?? null,
          displayName: data.displayName ?? null,
          avatarUrl: data.avatarUrl ?? null,
          passwordHash,
        },
      });
      await recordEvent(tx, userEvent('user.registered', created));
      return created;
    });
    ctx.outbox.kick();
  } catch (err) {
    // Two registrations racing for one name: the unique index decides, the loser hears why.
    const fields = uniqueViolation(err);
    if (fields) throw takenField((['username', 'email', 'phone'] as const).find((f) => fields.includes(f)) ?? 'username');
    throw err;
  }
  return openSession(ctx, user, data.deviceId);
}

function takenField(field: 'username' | 'email' | 'phone') {
  return conflict(field, `This ${field} is already taken`);
}

/**
 * How long the access token of a browser (cookie) session lives. Longer than the default is
 * safe because every request also checks the device row, so signing out ends it at once.
 */
const sessionSecondsRule = z.number().int().min(60, 'must be at least 60').nullish();

/** Longer than any name or password we keep: anything longer is refused before any lookup. */
const MAX_IDENTIFIER = 320;
const MAX_PASSWORD = 1024;

const loginRules = z.object({
  identifier: z.string().trim().min(1, 'is required').max(MAX_IDENTIFIER, `must be at most ${MAX_IDENTIFIER} characters`),
  password: z.string().min(1, 'is required').max(MAX_PASSWORD, `must be at most ${MAX_PASSWORD} characters`),
  deviceId: deviceIdRule,
  sessionSeconds: sessionSecondsRule,
});

/**
 * Sign in by username, email or phone number. A wrong password and an unknown name get the
 * same answer, after the same work, and both count towards the same lock (LoginThrottle).
 */
export async function login(ctx: Context, input: unknown, counted = false): Promise<Session> {
  if (!counted) await countAttempt(ctx);
  const { identifier, password, deviceId, sessionSeconds } = parseInput(loginRules, input);
  const key = LoginThrottle.key(identifier, ctx.clientAddress);
  const attempt = await ctx.loginThrottle.begin(key);
  if (!attempt.allowed) throw lockedError(attempt.retryAfter);
  const user = await findByIdentifier(ctx, identifier);
  const valid = user?.passwordHash ? await verifyPassword(user.passwordHash, password) : await burnPasswordCheck(password);
  if (!user || !valid) {
    await ctx.loginThrottle.failed(key, attempt.round);
    throw unauthenticated('Invalid username or password');
  }
  if (user.status === 'BANNED') throw forbidden('This account is banned');
  await ctx.loginThrottle.succeeded(key, attempt.round);
  return openSession(ctx, user, deviceId, sessionSeconds);
}

const emailLoginRules = z.object({
  email: emailRule,
  password: z.string().min(1, 'must not be empty').max(MAX_PASSWORD, `must be at most ${MAX_PASSWORD} characters`).nullish(),
  name: displayNameRule.nullish(),
  avatarUrl: profileRules.shape.avatarUrl,
  deviceId: deviceIdRule,
  sessionSeconds: sessionSecondsRule,
});

/**
 * Signs in by email, creating the account on first use (the socket-chat way). An account with
 * a password needs it; signing in with the email alone is for accounts without one, and only
 * when the operator turned it on (AUTH_PASSWORDLESS_EMAIL_LOGIN), since anyone who knows an
 * address could otherwise use it.
 */
export async function emailLogin(ctx: Context, input: unknown): Promise<Session> {
  await countAttempt(ctx);
  const data = parseInput(emailLoginRules, input);
  const existing = await ctx.db.user.findUnique({ where: { email: data.email } });
  if (existing?.passwordHash || (!existing && data.password)) {
    if (!data.password) throw unauthenticated('This account has a password: send it with the email');
    if (existing) {
      return login(ctx, { identifier: data.email, password: data.password, deviceId: data.deviceId, sessionSeconds: data.sessionSeconds }, true);
    }
    parseInput(z.object({ password: passwordRule }), { password: data.password });
  } else if (ctx.config.AUTH_PASSWORDLESS_EMAIL_LOGIN !== 'true') {
    throw unauthenticated('Signing in with an email alone is turned off on this server; send a password');
  }
  if (existing) {
    if (existing.status === 'BANNED') throw forbidden('This account is banned');
    return openSession(ctx, existing, data.deviceId, data.sessionSeconds);
  }
  const user = await createEmailAccount(ctx, data.email, {
    displayName: data.name ?? null,
    avatarUrl: data.avatarUrl ?? null,
    passwordHash: data.password ? await hashPassword(data.password) : null,
  });
  return openSession(ctx, user, data.deviceId, data.sessionSeconds);
}

/** A new account known by its email, with a username made from the address. */
async function createEmailAccount(
  services: Services,
  email: string,
  fields: Pick<User, 'displayName' | 'avatarUrl' | 'passwordHash'>,
): Promise<User> {
  const base = (email.split('@')[0].toLowerCase().replace(/[^a-z0-9_.]/g, '') || 'user').slice(0, 24).padEnd(3, '_');
  for (let attempt = 0; ; attempt++) {
    const username = attempt === 0 ? base : `${base}.${randomUUID().slice(0, 6)}`;
    try {
      const user = await services.db.$transaction(async (tx) => {
        const created = await tx.user.create({ data: { username, email, emailPublic: true, ...fields } });
        await recordEvent(tx, userEvent('user.registered', created));
        return created;
      });
      services.outbox.kick();
      return user;
    } catch (err) {
      const fields = uniqueViolation(err);
      // The same email signing in twice at once: the other request made the account.
      if (fields?.includes('email')) return services.db.user.findUniqueOrThrow({ where: { email } });
      if (!fields || attempt >= 5) throw err;
    }
  }
}

export function findByIdentifier(services: Services, identifier: string) {
  const value = identifier.trim();
  if (value.includes('@')) return services.db.user.findUnique({ where: { email: value.toLowerCase() } });
  if (value.startsWith('+')) return services.db.user.findUnique({ where: { phone: value } });
  return services.db.user.findUnique({ where: { username: value.toLowerCase() } });
}

function lockedError(retryAfter: number) {
  return new AppError(
    'RATE_LIMITED',
    `Signing in with this name from your address is locked after too many failed attempts; try again in ${Math.ceil(retryAfter / 60)} minute(s)`,
    { reason: 'TOO_MANY_FAILURES', retryAfter },
  );
}

/** Issues tokens for a new sign-in on a device (a new refresh-token family). */
export async function openSession(
  services: Services,
  user: User,
  deviceKey?: string | null,
  sessionSeconds?: number | null,
): Promise<Session> {
  const key = deviceKey || randomUUID();
  const existing = await services.db.device.findUnique({ where: { userId_deviceKey: { userId: user.id, deviceKey: key } } });
  // A signed-out device comes back with a new id, so access tokens of its old session stay dead.
  if (existing?.revokedAt) await services.db.device.delete({ where: { id: existing.id } });
  const device =
    existing && !existing.revokedAt
      ? await services.db.device.update({ where: { id: existing.id }, data: { lastUsedAt: new Date() } })
      : await services.db.device.create({ data: { userId: user.id, deviceKey: key } });
  const refreshToken = await issueRefreshToken(services, device.id, randomUUID());
  return sessionOf(services, user, device.id, refreshToken, sessionSeconds);
}

function sessionOf(services: Services, user: User, deviceId: number, refreshToken: string, sessionSeconds?: number | null): Session {
  const ttl = sessionSeconds ? Math.min(sessionSeconds, services.config.REFRESH_TOKEN_TTL) : undefined;
  const accessToken = services.tokens.signAccess({ sub: String(user.id), sid: deviceId, role: user.role }, ttl);
  return { accessToken, refreshToken, user, viewer: { id: user.id, role: user.role, deviceId, user } };
}

async function issueRefreshToken(services: Services, deviceId: number, familyId: string): Promise<string> {
  const { token, hash } = newOpaqueToken();
  await services.db.refreshToken.create({
    data: {
      deviceId,
      familyId,
      tokenHash: hash,
      expiresAt: new Date(Date.now() + services.config.REFRESH_TOKEN_TTL * 1000),
    },
  });
  return token;
}

/**
 * Trades a refresh token for a new pair. Each token works once: presenting one that was
 * already used means it was copied, so the whole family (the device's session) is revoked.
 */
export async function refresh(
  services: Services,
  refreshToken: string,
  deviceKey?: string | null,
  sessionSeconds?: number | null,
): Promise<Session> {
  const stored = await services.db.refreshToken.findUnique({
    where: { tokenHash: hashOpaqueToken(refreshToken) },
    include: { device: { include: { user: true } } },
  });
  if (!stored) throw unauthenticated('Refresh token invalid');
  const { device } = stored;
  if (deviceKey && device.deviceKey !== deviceKey) throw unauthenticated('Refresh token does not belong to this device');
  if (stored.revokedAt || device.revokedAt) throw unauthenticated('Refresh token revoked; sign in again');
  const now = new Date();
  // Claimed with a conditional update, so two concurrent uses cannot both succeed.
  const claimed = await services.db.refreshToken.updateMany({
    where: { id: stored.id, usedAt: null },
    data: { usedAt: now },
  });
  if (claimed.count === 0) {
    await revokeDevice(services, device.userId, device.id);
    throw unauthenticated('Refresh token reuse detected; this device has been signed out');
  }
  if (stored.expiresAt <= now) throw unauthenticated('Refresh token expired; sign in again');
  if (device.user.status === 'BANNED') throw forbidden('This account is banned');
  await services.db.device.update({ where: { id: device.id }, data: { lastUsedAt: now } });
  const next = await issueRefreshToken(services, device.id, stored.familyId);
  return sessionOf(services, device.user, device.id, next, parseInput(sessionSecondsRule, sessionSeconds));
}

/** Ends a device's session: its refresh tokens, its access tokens and its open sockets. */
export async function revokeDevice(services: Services, userId: number, deviceId: number): Promise<void> {
  const now = new Date();
  await services.db.$transaction([
    services.db.device.update({ where: { id: deviceId }, data: { revokedAt: now } }),
    services.db.refreshToken.updateMany({ where: { deviceId, revokedAt: null }, data: { revokedAt: now } }),
  ]);
  await announceSessionChange(services, { type: 'deviceRevoked', userId, deviceId });
}

export async function logout(services: Services, viewer: Viewer): Promise<boolean> {
  await revokeDevice(services, viewer.id, viewer.deviceId);
  return true;
}

/** Makes sure the admin named by ADMIN_USERNAME / ADMIN_PASSWORD exists with that password. */
export async function ensureAdmin(services: Services): Promise<void> {
  const { ADMIN_USERNAME, ADMIN_PASSWORD, ADMIN_EMAIL } = services.config;
  if (!ADMIN_USERNAME || !ADMIN_PASSWORD) return;
  const username = usernameRule.parse(ADMIN_USERNAME);
  const existing = await services.db.user.findUnique({ where: { username } });
  const passwordOk = existing?.passwordHash ? await verifyPassword(existing.passwordHash, ADMIN_PASSWORD) : false;
  const passwordHash = passwordOk ? undefined : await hashPassword(ADMIN_PASSWORD);
  try {
    await services.db.user.upsert({
      where: { username },
      create: { username, email: ADMIN_EMAIL?.toLowerCase() ?? null, passwordHash, role: 'ADMIN', displayName: 'Administrator' },
      update: { role: 'ADMIN', status: 'ACTIVE', ...(passwordHash ? { passwordHash } : {}) },
    });
  } catch (err) {
    // Another instance starting at the same moment created it first: that is the goal met.
    if (!uniqueViolation(err)) throw err;
  }
}
