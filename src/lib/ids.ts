/**
 * Database ids, parsed once where a request enters (the GraphQL `ID` scalar, a dialect's path
 * or query parameter), so no malformed or out-of-range id ever reaches a query. Every table's
 * id is a PostgreSQL `integer`: 1 to 2³¹−1.
 */
export const MAX_DATABASE_ID = 2 ** 31 - 1;

const DIGITS = /^[1-9]\d{0,9}$/;

/**
 * The id `value` names (a string of decimal digits, or an integer), or null when it cannot
 * name a row: not a whole number, written in another form ("1e3", "007", " 7"), zero,
 * negative, or past the column's range.
 */
export function parseDatabaseId(value: unknown): number | null {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && DIGITS.test(value)) n = Number(value);
  else return null;
  return Number.isInteger(n) && n >= 1 && n <= MAX_DATABASE_ID ? n : null;
}

/** What a refused id is told, worded for every surface alike. */
export const DATABASE_ID_RULE = `must be an id: a whole number from 1 to ${MAX_DATABASE_ID}`;
