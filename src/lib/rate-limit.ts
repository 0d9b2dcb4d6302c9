import type { Redis } from 'ioredis';
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
    private readonly enabled: boolean,
  ) {}

  /** Counts one request of `key` against `bucket`; null when limits are off. */
  async consume(bucket: string, limit: Limit, key: string): Promise<LimitResult | null> {
    if (!this.enabled) return null;
    const limiter = this.limiter(bucket, limit);
    const now = Date.now();
    let res: RateLimiterRes;
    let allowed = true;
    try {
      res = await limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
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
      limiter = createLimiter(this.redis, { keyPrefix: `rl:${name}`, points: limit.points, duration: limit.seconds });
      this.limiters.set(name, limiter);
    }
    return limiter;
  }
}

/** A counter of `points` per `duration` seconds, kept in Redis when the instances share one. */
export function createLimiter(redis: Redis | undefined, options: { keyPrefix: string; points: number; duration: number }): RateLimiterAbstract {
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
