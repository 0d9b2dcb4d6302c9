import type { User } from '../../generated/prisma/client.ts';
import { TokenError } from '../../lib/tokens.ts';
import type { Services } from '../../services/services.ts';
import type { SessionRow } from './sessions.ts';

/** Who is asking: the signed-in user of an operation, and the device their token belongs to. */
export interface Viewer {
  id: number;
  role: 'USER' | 'ADMIN';
  deviceId: number;
  /** The user's row as read when the request was authenticated. */
  user: User;
}

/** Accepts `Bearer <token>` or a bare token. */
export function bearerToken(header: unknown): string | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return (match ? match[1] : header).trim();
}

/**
 * Resolves the caller from an access token: the signature and expiry, then the device (not
 * logged out or revoked by refresh-token reuse) and the user (not banned): one query, then
 * remembered by `SessionCache` until a control event says the session or the user changed.
 * `expiresAt` (ms) is when the token stops working, for connections that outlive it.
 */
export async function authenticate(
  services: Services,
  token: string | null,
): Promise<{ viewer: Viewer | null; authProblem: string | null; expiresAt?: number }> {
  if (!token) return { viewer: null, authProblem: null };
  let claims;
  try {
    claims = services.tokens.verifyAccess(token);
  } catch (err) {
    const reason = err instanceof TokenError ? err.reason : 'invalid';
    return { viewer: null, authProblem: reason === 'expired' ? 'Access token expired' : 'Access token invalid' };
  }
  const row = await services.sessions.lookup(claims.sid, async () => {
    // Plain SQL: Prisma's query compiler costs more than this statement.
    const { rows } = await services.sql.query<SessionRow>({
      name: 'session-by-device',
      text: `SELECT u.*, d."revokedAt" AS "deviceRevokedAt"
             FROM "Device" d JOIN "User" u ON u.id = d."userId"
             WHERE d.id = $1`,
      values: [claims.sid],
    });
    return rows[0];
  });
  if (!row || row.deviceRevokedAt || String(row.id) !== claims.sub) {
    return { viewer: null, authProblem: 'Session ended; sign in again' };
  }
  if (row.status === 'BANNED') return { viewer: null, authProblem: 'This account is banned' };
  const { deviceRevokedAt: _revoked, ...user } = row;
  return { viewer: { id: user.id, role: user.role, deviceId: claims.sid, user }, authProblem: null, expiresAt: claims.exp * 1000 };
}
