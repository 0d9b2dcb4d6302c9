import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { addressKey } from '../../lib/client-address.ts';
import { createLimiter } from '../../lib/rate-limit.ts';

/** Failures are forgotten an hour after the last one, and earlier locks after a day. */
const HOUR = 3600;
const DAY = 24 * HOUR;

/**
 * What `begin` decided: the attempt may check its password (and reports back under `round`),
 * or the name is locked here for `retryAfter` seconds.
 */
export type Attempt = { allowed: true; round: string } | { allowed: false; retryAfter: number };

/**
 * Failed sign-ins, counted per name as typed (username, email or phone) and client address,
 * as OWASP's authentication guidance suggests: `maxFailures` in a row from one address lock
 * that address out of that name for `lockSeconds`, doubling with each further lock within a
 * day. A stranger's guesses therefore never lock the owner out from their own address. Names
 * are counted alike whether or not an account has them, and each form of a name counts on its
 * own, so neither the answers nor the moment a lock starts tell which names exist or which
 * email belongs to which username. Kept in Redis when instances share one (rate-limiter-
 * flexible, as for the request limits), else in memory; names are kept hashed.
 */
export class LoginThrottle {
  private readonly failures: RateLimiterAbstract;
  private readonly locks: RateLimiterAbstract;
  private readonly lockouts: RateLimiterAbstract;

  constructor(
    redis: Redis | undefined,
    private readonly maxFailures: number,
    private readonly lockSeconds: number,
  ) {
    const make = (keyPrefix: string, points: number, duration: number) => createLimiter(redis, { keyPrefix, points, duration });
    this.failures = make('login-failures', maxFailures, HOUR);
    this.locks = make('login-lock', 1, DAY);
    this.lockouts = make('login-lockouts', 1_000, DAY);
  }

  /** The key for one name tried from one address. */
  static key(identifier: string, address: string): string {
    const name = createHash('sha256').update(identifier.trim().toLowerCase()).digest('base64url').slice(0, 22);
    return `${name}|${addressKey(address)}`;
  }

  /**
   * Counts an attempt before its password is checked, so that attempts made at the same moment
   * cannot all slip in before the first failure is counted: at most `maxFailures` are checked.
   * Failures are counted per round (the number of locks so far), so a lock starts the next
   * round afresh without a moment in which the old count is gone and the lock not yet set.
   */
  async begin(key: string): Promise<Attempt> {
    // The round is read before the lock: a lock is set before its round moves on, so an
    // attempt that sees the new round sees the lock too, and one that sees the old round
    // counts where the limit was already reached.
    const round = `${key}#${(await this.lockouts.get(key))?.consumedPoints ?? 0}`;
    const locked = await this.lockedFor(key);
    if (locked > 0) return { allowed: false, retryAfter: locked };
    const { consumedPoints } = await this.failures.penalty(round, 1);
    if (consumedPoints <= this.maxFailures) return { allowed: true, round };
    return { allowed: false, retryAfter: await this.lock(key) };
  }

  /** A wrong password: the attempt that reaches the limit starts a lock. */
  async failed(key: string, round: string): Promise<void> {
    const counted = await this.failures.get(round);
    if ((counted?.consumedPoints ?? 0) >= this.maxFailures) await this.lock(key);
  }

  /** The right password: the name's failures and locks from this address are forgotten. */
  async succeeded(key: string, round: string): Promise<void> {
    await Promise.all([this.failures.delete(round), this.lockouts.delete(key), this.locks.delete(key)]);
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  async lockedFor(key: string): Promise<number> {
    const lock = await this.locks.get(key);
    return lock && lock.consumedPoints > 1 ? Math.max(1, Math.ceil(lock.msBeforeNext / 1000)) : 0;
  }

  /**
   * Locks `key` (unless it is already), each lock within a day twice as long; returns its
   * seconds. The lock is in place before the round moves on, so no attempt finds neither.
   */
  private async lock(key: string): Promise<number> {
    const already = await this.lockedFor(key);
    if (already > 0) return already;
    const earlier = (await this.lockouts.get(key))?.consumedPoints ?? 0;
    const seconds = Math.min(DAY, this.lockSeconds * 2 ** Math.min(earlier, 16));
    await this.locks.block(key, seconds);
    await this.lockouts.penalty(key, 1);
    return seconds;
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Failed sign-ins per account and address, and the locks they earn. */
    loginThrottle: LoginThrottle;
  }
}
