import type { z } from 'zod';
import { badInput } from './errors.ts';

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

/**
 * A value the database refused as data (PostgreSQL's class 22: out of range, not valid text,
 * too long), whether Prisma or plain `pg` reports it. Values come from requests, so this is
 * the client's bad input that no rule caught: answered as such rather than as our failure.
 */
export function isDataException(err: unknown): boolean {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } }; cause?: { originalCode?: unknown } };
  if (e?.code === 'P2000' || e?.code === 'P2020' || e?.code === 'P2033') return true;
  return [e?.code, e?.meta?.driverAdapterError?.cause?.originalCode, e?.cause?.originalCode].some(
    (code) => typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code),
  );
}
