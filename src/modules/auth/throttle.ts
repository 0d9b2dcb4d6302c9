import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** A day: failures and locks are forgotten after a day without more. */
const DAY = 24 * 3600;

/**
 * Failed sign-ins, counted per account and client address (OWASP's authentication guidance):
 * `maxFailures` in a row from one address lock that address out of that account for
 * `lockSeconds`, doubling with each further lock within a day. A stranger's guesses therefore
 * never lock the owner out from their own address, and an unknown name is counted exactly like
 * an account, so the answers cannot tell which names exist. Kept in Redis when instances share
 * one (rate-limiter-flexible, as for the request limits), else in memory.
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
    const make = (keyPrefix: string, points: number) =>
      redis
        ? new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration: DAY })
        : new RateLimiterMemory({ keyPrefix, points, duration: DAY });
    this.failures = make('login-failures', maxFailures);
    this.locks = make('login-lock', 1);
    this.lockouts = make('login-lockouts', 1_000);
  }

  /** The key for one account (or unknown name) tried from one address. */
  static key(account: { id: number } | null, identifier: string, address: string): string {
    return `${account ? `user:${account.id}` : `name:${identifier.trim().toLowerCase()}`}|${address}`;
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  async lockedFor(key: string): Promise<number> {
    const lock = await this.locks.get(key);
    return lock && lock.consumedPoints > 1 ? Math.max(1, Math.ceil(lock.msBeforeNext / 1000)) : 0;
  }

  /** Counts a failure; the one that reaches the limit starts a lock. */
  async failed(key: string): Promise<void> {
    const counted = await this.failures.penalty(key, 1);
    if (counted.consumedPoints < this.maxFailures) return;
    const { consumedPoints: lockNumber } = await this.lockouts.penalty(key, 1);
    await this.failures.delete(key);
    await this.locks.block(key, Math.min(DAY, this.lockSeconds * 2 ** Math.min(lockNumber - 1, 16)));
  }

  /** A success forgets the key's failures and earlier locks. */
  async succeeded(key: string): Promise<void> {
    await Promise.all([this.failures.delete(key), this.lockouts.delete(key)]);
  }
}
