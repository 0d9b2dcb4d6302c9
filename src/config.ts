import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const isCidr = (value: string) => {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return false;
  }
};

/** Every setting the server reads from the environment, with its default. */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  /** Connections in the PostgreSQL pool (the embedded database always uses 1). */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(10),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Lifetime of an access token in seconds. */
  ACCESS_TOKEN_TTL: z.coerce.number().int().min(1).default(900),
  /** Lifetime of a refresh token in seconds (30 days). */
  REFRESH_TOKEN_TTL: z.coerce.number().int().min(60).default(30 * 24 * 3600),
  /** Failed logins in a row that lock an account, and for how many seconds. */
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  LOGIN_LOCK_SECONDS: z.coerce.number().int().min(1).default(900),
  ADMIN_USERNAME: z.string().optional(),
  ADMIN_PASSWORD: z.string().optional(),
  ADMIN_EMAIL: z.string().email().optional(),
  RATE_LIMITS: z.enum(['on', 'off']).default('on'),
  /** GraphQL operations (HTTP and graphql-ws together) one signed-in user may start per minute. */
  GRAPHQL_RATE_LIMIT: z.coerce.number().int().min(1).default(600),
  /** The same per client address, for operations sent without a valid access token. */
  GRAPHQL_RATE_LIMIT_ANONYMOUS: z.coerce.number().int().min(1).default(300),
  AUTH_PASSWORDLESS_EMAIL_LOGIN: z.enum(['true', 'false']).default('false'),
  MQTT_URL: z.string().regex(/^mqtts?:\/\//, 'must start with mqtt:// or mqtts://').optional(),
  /** Tries before an event's delivery to a webhook, push subscription or MQTT is dead (admins can replay it). */
  OUTBOX_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(10),
  /** Seconds before a failed delivery's first retry; each next waits twice as long (±50%), at most an hour. */
  OUTBOX_RETRY_BASE: z.coerce.number().positive().default(2),
  /** Hours delivered events are kept (listed in delivery logs) before they are pruned. */
  OUTBOX_RETENTION: z.coerce.number().positive().default(72),
  /** Seconds between looks for events another instance recorded (each instance hands out its own at once). */
  OUTBOX_POLL: z.coerce.number().positive().default(5),
  /** Seconds a webhook receiver has to answer before the delivery counts as failed. */
  WEBHOOK_TIMEOUT: z.coerce.number().positive().default(10),
  /** `true`: webhooks may target loopback and private addresses (tests, on-premises receivers). */
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  /** Comma-separated CIDRs webhooks may reach although not public, beyond WEBHOOK_ALLOW_PRIVATE. */
  WEBHOOK_ALLOWED_NETWORKS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .refine((list) => list.every((cidr) => isCidr(cidr)), 'must be comma-separated CIDRs such as 127.0.0.0/8 or ::1/128'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds a presence heartbeat stays valid; an instance refreshes its own at a third of it. */
  PRESENCE_TTL: z.coerce.number().int().min(2).default(30),
  /** Where uploads are stored: `local` (DATA_DIR/uploads) or `s3` (the S3_* settings). */
  STORAGE: z.enum(['local', 's3']).default('local'),
  S3_BUCKET: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** For S3-compatible services (MinIO, R2…); path-style addressing is used with it. */
  S3_ENDPOINT: z.string().url().optional(),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** Largest accepted upload, in bytes (25 MB). */
  MAX_UPLOAD_BYTES: z.coerce.number().int().min(1).default(25 * 1024 * 1024),
  /** Seconds a signed file link stays valid. */
  FILE_URL_TTL: z.coerce.number().int().min(1).default(3600),
  /** The server's public origin for links in responses (e.g. https://chat.example.com); by default the request's Host. */
  PUBLIC_URL: z.string().url().optional(),
  VAPID_PUBLIC_KEY: z.string().min(1).optional(),
  VAPID_PRIVATE_KEY: z.string().min(1).optional(),
  /** Whom push services may contact about our pushes (VAPID `sub`); by default PUBLIC_URL when https, else mailto:ADMIN_EMAIL. */
  PUSH_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)\S+$/, 'must be a mailto: address or an https:// URL').optional(),
  /** Seconds a call rings before it becomes MISSED. */
  CALL_RING_TIMEOUT: z.coerce.number().int().min(1).default(45),
  /** Comma-separated browser origins allowed by CORS; `*` allows any. */
  CORS_ORIGINS: z.string().default('*'),
  /** `true` behind a reverse proxy: X-Forwarded-For, -Host and -Proto are read (and only then). */
  TRUST_PROXY: z.enum(['true', 'false']).default('false'),
  /** Largest cost one GraphQL operation may have (each field 1, each list's selection times its page). */
  QUERY_MAX_COST: z.coerce.number().int().min(1).default(20_000),
  /** Deepest selection one operation may nest (introspection aside). */
  QUERY_MAX_DEPTH: z.coerce.number().int().min(1).default(12),
  /** Aliases one operation may use. */
  QUERY_MAX_ALIASES: z.coerce.number().int().min(0).default(30),
  /** Seconds a query may run before it is stopped (mutations and subscriptions are not cut short by time). */
  OPERATION_TIMEOUT: z.coerce.number().positive().default(10),
  /** Operations one graphql-ws socket may have running at once (subscriptions included). */
  WS_MAX_OPERATIONS: z.coerce.number().int().min(1).default(100),
  /**
   * Events one subscription may leave unread (its client not reading its socket) before it is
   * ended with UNAVAILABLE (`reason: TOO_FAR_BEHIND`), so that it subscribes again and catches up.
   */
  SUBSCRIPTION_MAX_QUEUED: z.coerce.number().int().min(1).default(10_000),
  /**
   * Seconds between pings on raw WebSocket dialect connections; one that has not answered the
   * previous ping by the next is dropped (its user goes offline).
   */
  WS_HEARTBEAT: z.coerce.number().positive().default(30),
  /** Seconds SIGTERM waits for open requests before closing the rest. */
  SHUTDOWN_GRACE: z.coerce.number().min(0).default(10),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {}

/** Reads and checks the environment once; a bad value throws one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "not set", as it does in most shells and compose files.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`Invalid configuration: ${issue.path.join('.')} ${issue.message}`);
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production' && !config.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET is required when NODE_ENV=production');
  }
  if (config.STORAGE === 's3' && !config.S3_BUCKET) {
    throw new ConfigError('Invalid configuration: S3_BUCKET is required when STORAGE=s3');
  }
  if (Boolean(config.ADMIN_USERNAME) !== Boolean(config.ADMIN_PASSWORD)) {
    throw new ConfigError('Invalid configuration: ADMIN_USERNAME and ADMIN_PASSWORD must be set together');
  }
  return config;
}

const parsedOrigins = new WeakMap<Config, string[]>();

/** CORS_ORIGINS as a list (`*` stays an entry), parsed once per config. */
export function corsOrigins(config: Config): string[] {
  let origins = parsedOrigins.get(config);
  if (!origins) parsedOrigins.set(config, (origins = config.CORS_ORIGINS.split(',').map((o) => o.trim())));
  return origins;
}
