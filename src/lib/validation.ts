import type { z } from 'zod';
import { badInput } from '../graphql/errors.ts';

/** Parses `input` with `schema`, or throws BAD_USER_INPUT with one message per field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields: Record<string, string> = {};
  for (const issue of result.error.issues) {
    const field = issue.path.join('.') || 'input';
    fields[field] ??= issue.message;
  }
  throw badInput(fields);
}

/** Prisma's unique-constraint error (P2002), with the columns it names when it names them. */
export function uniqueViolation(err: unknown): string[] | null {
  const e = err as { code?: string; meta?: { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: string[] } } } } };
  if (e?.code !== 'P2002') return null;
  const target = e.meta?.target;
  if (Array.isArray(target)) return target.map(String);
  if (typeof target === 'string') return [target];
  return e.meta?.driverAdapterError?.cause?.constraint?.fields?.map((f) => f.replaceAll('"', '')) ?? [];
}

/**
 * A unique-constraint violation, whether Prisma reports it (P2002) or it comes from a raw
 * statement as PostgreSQL's own code 23505.
 */
export function isUniqueViolation(err: unknown): boolean {
  if (uniqueViolation(err)) return true;
  const e = err as { code?: string; meta?: { code?: string }; cause?: { originalCode?: string; code?: string } };
  return e?.meta?.code === '23505' || e?.cause?.originalCode === '23505' || /23505|unique constraint/i.test(String((err as Error)?.message));
}
