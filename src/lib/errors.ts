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
