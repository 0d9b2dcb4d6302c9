import { GatewayError } from '../gateway/gateway.ts';
import { statusOf } from './rest.ts';

/**
 * Errors as the seeds show them: their statuses and their field names. Each dialect keeps its
 * own words and body; what they share is here.
 */

/**
 * The HTTP status a seed answers an error code with: `statusOf`'s, except that a conflict (a
 * name already taken) is refused input there, a 400, as the seeds' Flask and FastAPI apps
 * answer it. `overrides` gives a seed's other codes their own status.
 */
export function seedStatus(code: string, overrides: Record<string, number> = {}): number {
  return Object.hasOwn(overrides, code) ? overrides[code] : code === 'CONFLICT' ? 400 : statusOf(code);
}

/**
 * `err` with its per-field messages under a seed's field names: `names` maps ours to the
 * seed's (fields it does not name keep ours) or renames each. Refused input is then worded
 * "field: problem" by its first field, as every dialect shows it; other errors keep their message.
 */
export function renameFields(err: GatewayError, names: Record<string, string> | ((ours: string) => string)): GatewayError {
  const rename = typeof names === 'function' ? names : (ours: string) => (Object.hasOwn(names, ours) ? names[ours] : ours);
  const fields = Object.entries(err.fields).map(([ours, problem]) => [rename(ours), problem] as const);
  const message = err.code === 'BAD_USER_INPUT' && fields.length > 0 ? `${fields[0][0]}: ${fields[0][1]}` : err.message;
  return new GatewayError(err.code, message, Object.fromEntries(fields), err.extensions);
}
