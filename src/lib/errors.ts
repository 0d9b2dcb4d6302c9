import { GraphQLError } from 'graphql';

/** The error codes clients can rely on (CONTRACT); anything else is masked by Yoga. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAVAILABLE';

/** An expected failure: its message and code reach the client unmasked. */
export class AppError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extra } });
  }
}

export const unauthenticated = (message = 'You must be signed in') => new AppError('UNAUTHENTICATED', message);
export const forbidden = (message = 'You are not allowed to do this') => new AppError('FORBIDDEN', message);
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
export const conflict = (field: string, message: string) =>
  new AppError('CONFLICT', message, { field, fields: { [field]: message } });

/** Invalid input, with one message per offending field (`extensions.fields`). */
export function badInput(fields: Record<string, string>): AppError {
  const [first] = Object.entries(fields);
  return new AppError('BAD_USER_INPUT', first ? `${first[0]}: ${first[1]}` : 'Invalid input', { fields });
}

/** For lists that page forward only (newest first): refuse `last` / `before` clearly. */
export function forwardOnly(args: { last?: number | null; before?: string | null }): void {
  if (args.last != null || args.before != null) throw badInput({ last: 'this list pages forward only: use first and after' });
}

/**
 * An expected error thrown rather than returned: Yoga's executor throws the reason it was
 * stopped (a query past its time budget, a client gone). Checked by name, as graphql may be
 * loaded twice (see graphql/yoga.ts).
 */
export function isCodedError(err: unknown): err is GraphQLError {
  return (err as Error)?.name === 'GraphQLError' && Boolean((err as GraphQLError).extensions?.code);
}

/** Seconds a client is told to wait before retrying after a transient failure. */
export const RETRY_AFTER_SECONDS = 1;

/** What a client reads when the database or pub/sub failed for a moment. */
export const UNAVAILABLE_MESSAGE =
  'The service is briefly unavailable (its database or pub/sub did not answer); retry shortly, with the same clientId for a send';

/**
 * The answer to an operation that failed for a moment: retrying it is safe (a send with the
 * same clientId stores one message). Over HTTP a 503 with Retry-After (Yoga reads `http` and
 * leaves it out of the body; graphql-ws drops it, see transports/graphql-ws.ts).
 */
export function unavailable(options: { path?: readonly (string | number)[] } = {}): GraphQLError {
  return new GraphQLError(UNAVAILABLE_MESSAGE, {
    path: options.path,
    extensions: {
      code: 'UNAVAILABLE',
      reason: 'TRANSIENT',
      retryAfter: RETRY_AFTER_SECONDS,
      http: { status: 503, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } },
    },
  });
}

/** SQLSTATE classes and codes of a database that is away, restarting, busy or racing: 08 connection, 57P0x shutdown, 53300 too many connections, 40001/40P01 serialization and deadlock. */
const TRANSIENT_SQLSTATE = /^(08...|57P0[1-3]|53300|40001|40P01)$/;
/** Prisma's codes for the same (can't reach, timed out, connection closed, pool timeout, write conflict, transaction gone). */
const TRANSIENT_PRISMA = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2034']);
/** Prisma's driver adapter's kinds for the same. */
const TRANSIENT_KIND = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TransactionWriteConflict']);
const TRANSIENT_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN']);
/** Messages of pg and ioredis that carry no code. */
const TRANSIENT_MESSAGE =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection is closed\.|Reached the max retries per request limit)/;

/**
 * Whether `err` (or what it wraps) is a failure of the database or Redis that passes: the
 * operation did not fail because of its input or a bug, and may succeed if retried.
 */
export function isTransientFailure(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e = err as Record<string, unknown> | undefined; e && typeof e === 'object' && !seen.has(e); ) {
    seen.add(e);
    const code = e.code;
    if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_PRISMA.has(code) || TRANSIENT_ERRNO.has(code))) return true;
    if (typeof e.originalCode === 'string' && TRANSIENT_SQLSTATE.test(e.originalCode)) return true;
    if (typeof e.kind === 'string' && (TRANSIENT_KIND.has(e.kind) || (e.kind === 'postgres' && TRANSIENT_SQLSTATE.test(String(e.code))))) return true;
    if (typeof e.message === 'string' && TRANSIENT_MESSAGE.test(e.message)) return true;
    const meta = e.meta as Record<string, unknown> | undefined;
    const adapter = meta?.driverAdapterError as Record<string, unknown> | undefined;
    e = (adapter?.cause ?? e.originalError ?? e.cause) as Record<string, unknown> | undefined;
  }
  return false;
}

/** How loud an unexpected failure is logged: a passing database or Redis fault warns, anything else is an error. */
export const logLevelOf = (err: unknown): 'warn' | 'error' => (isTransientFailure(err) ? 'warn' : 'error');
