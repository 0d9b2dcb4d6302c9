import type { Redis } from 'ioredis';
import type { Logger } from './logger.ts';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** A documented limit: `points` requests per `seconds`. */
export interface Limit {
  points: number;
  seconds: number;
}

export interface LimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Unix seconds when the window resets. */
  reset: number;
  retryAfter: number;
}

/**
 * Fixed-window counters per bucket and key (user or address), in Redis when the instances
 * share one, so a client cannot multiply its allowance by spreading over instances.
 * rate-limiter-flexible does the counting: atomic in Redis, and the library most Node
 * services use for this.
 */
export class RateLimits {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly redis: Redis | undefined,
    /** False with RATE_LIMITS=off: nothing is counted and every request is let through. */
    readonly enabled: boolean,
    private readonly log?: Logger,
  ) {}

  /**
   * Counts one request of `key` against `bucket`; null when limits are off, or when the counter
   * could not be reached (Redis failed the command): a limit is not worth refusing every request.
   */
  async consume(bucket: string, limit: Limit, key: string): Promise<LimitResult | null> {
    if (!this.enabled) return null;
    const limiter = this.limiter(bucket, limit);
    const now = Date.now();
    let res: RateLimiterRes;
    let allowed = true;
    try {
      res = await limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.log?.warn({ err, bucket }, 'rate limit not counted: its store failed; the request is let through');
        return null;
      }
      res = err;
      allowed = false;
    }
    return {
      allowed,
      limit: limit.points,
      remaining: Math.max(0, res.remainingPoints),
      reset: Math.ceil((now + res.msBeforeNext) / 1000),
      retryAfter: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
    };
  }

  private limiter(bucket: string, limit: Limit): RateLimiterAbstract {
    const name = `${bucket}:${limit.points}/${limit.seconds}`;
    let limiter = this.limiters.get(name);
    if (!limiter) {
      limiter = createLimiter(this.redis, {
        keyPrefix: `rl:${name}`,
        points: limit.points,
        duration: limit.seconds,
        // A key over its limit is refused from memory until its window ends: a flood past the
        // limit costs no Redis command (another instance still asks Redis, and is refused there).
        inMemoryBlockOnConsumed: limit.points + 1,
      });
      this.limiters.set(name, limiter);
    }
    return limiter;
  }
}

/** A counter of `points` per `duration` seconds, kept in Redis when the instances share one. */
export function createLimiter(
  redis: Redis | undefined,
  options: { keyPrefix: string; points: number; duration: number; inMemoryBlockOnConsumed?: number },
): RateLimiterAbstract {
  return redis ? new RateLimiterRedis({ ...options, storeClient: redis }) : new RateLimiterMemory(options);
}

/** The X-RateLimit-* headers a client reads to pace itself. */
export function rateLimitHeaders(result: LimitResult): Record<string, string> {
  return {
    'x-ratelimit-limit': String(result.limit),
    'x-ratelimit-remaining': String(result.remaining),
    'x-ratelimit-reset': String(result.reset),
    ...(result.allowed ? {} : { 'retry-after': String(result.retryAfter) }),
  };
}
