import type { Services } from '../../services/services.ts';
import { authenticate } from '../../modules/viewer/viewer.ts';
import { GatewayError, type Gateway } from '../../gateway/gateway.ts';
import { graphql, type DocumentType } from '../../generated/compat/index.ts';
import type { RestRequest, SetCookie } from '../rest.ts';
import { corsOrigins } from '../../config.ts';

/**
 * Chattrix keeps its session in cookies, as a Flask app does: `session` holds our access
 * token and, with "remember me", `remember_token` holds the refresh token that renews it.
 */
export const SESSION_COOKIE = 'session';
export const REMEMBER_COOKIE = 'remember_token';

/** A browser session lasts a day unless the user asked to be remembered. */
const SESSION_SECONDS = 24 * 60 * 60;

/** Routes a signed-out browser posts to: only a foreign Origin is refused there (see `checkSameOrigin`). */
const OPEN_WRITES = new Set(['/register', '/login']);

/** What a sign-in (or a renewal) answers: the tokens for the cookies, the user for the body. */
export const SignedInFields = graphql(`
  fragment ChattrixSignedIn on AuthPayload { accessToken refreshToken user { ...ChattrixUser } }
`);

const RENEW_SESSION = graphql(`
  mutation ChattrixRenewSession($token: String!, $seconds: Int!) {
    refreshToken(refreshToken: $token, sessionSeconds: $seconds) { ...ChattrixSignedIn }
  }
`);

export function sessionSeconds(services: Services, remember: boolean): number {
  return remember ? services.config.REFRESH_TOKEN_TTL : SESSION_SECONDS;
}

/**
 * The cookies of a new session. A remembered one outlives the browser (Max-Age) and brings the
 * refresh token; a plain one ends with the browser, and any earlier remember_token goes.
 */
export function sessionCookies(req: RestRequest, session: Pick<DocumentType<typeof SignedInFields>, 'accessToken' | 'refreshToken'>, remember: boolean): SetCookie[] {
  const { config } = req.services;
  const options = cookieOptions(req);
  if (!remember) {
    return [
      { name: SESSION_COOKIE, value: session.accessToken, options },
      { name: REMEMBER_COOKIE, value: '', options: { ...options, maxAge: 0 } },
    ];
  }
  return [
    { name: SESSION_COOKIE, value: session.accessToken, options: { ...options, maxAge: sessionSeconds(req.services, true) } },
    { name: REMEMBER_COOKIE, value: session.refreshToken, options: { ...options, maxAge: config.REFRESH_TOKEN_TTL } },
  ];
}

export function clearedCookies(req: RestRequest): SetCookie[] {
  const options = { ...cookieOptions(req), maxAge: 0 };
  return [SESSION_COOKIE, REMEMBER_COOKIE].map((name) => ({ name, value: '', options }));
}

function cookieOptions(req: RestRequest) {
  const secure = req.caller.forwardedProto === 'https' || Boolean(req.services.config.PUBLIC_URL?.startsWith('https:'));
  return { httpOnly: true, sameSite: 'lax' as const, path: '/', secure };
}

/**
 * Turns the session cookie into the caller's token (an `Authorization: Bearer` header serves
 * API clients without cookies). A session that ended is renewed from remember_token, with fresh
 * cookies; a remember_token that no longer works is cleared. Writes made with the cookie, and
 * sign-ins and sign-ups from a browser, must come from the app's own pages (`checkSameOrigin`).
 */
export async function authorizeSession(req: RestRequest, services: Services, gateway: Gateway): Promise<SetCookie[]> {
  const session = req.cookies[SESSION_COOKIE];
  const remember = req.cookies[REMEMBER_COOKIE];
  if (req.method !== 'GET' && (OPEN_WRITES.has(req.path) || session || remember)) checkSameOrigin(req, services);
  if (!session && !remember) return [];
  // The session is checked here only when a failed one could be renewed; otherwise the operation checks it.
  if (session && (!remember || (await authenticate(services, session)).viewer)) {
    req.caller.authorization = `Bearer ${session}`;
    return [];
  }
  try {
    // Here `remember` is set: a session without it returned above.
    const data = await gateway.run(RENEW_SESSION, { token: remember!, seconds: sessionSeconds(services, true) }, req.caller);
    req.caller.authorization = `Bearer ${data.refreshToken.accessToken}`;
    return sessionCookies(req, data.refreshToken, true);
  } catch (err) {
    if (!(err instanceof GatewayError) || err.code !== 'UNAUTHENTICATED') throw err;
    return clearedCookies(req);
  }
}

/**
 * Whether a browser's Origin is this server (the host the request reached) or an origin
 * CORS_ORIGINS lists by name; `*` lists none, since it lets any site in without cookies.
 */
export function trustedOrigin(origin: string, host: string | undefined | null, services: Services): boolean {
  let originHost: string | null = null;
  try {
    originHost = new URL(origin).host;
  } catch {
    // An Origin that is not a URL ("null" from a sandboxed page) is not ours.
  }
  if (originHost !== null && originHost === host) return true;
  const allowed = corsOrigins(services.config);
  return !allowed.includes('*') && allowed.includes(origin);
}

/**
 * A cookie travels with any request the browser makes, so a write must show it comes from the
 * app's own pages. A browser names the page's origin on every write, and when it does that
 * decides. Without one, a cookie-authenticated write needs what a cross-site form cannot send:
 * the X-Requested-With header the app's scripts send. Sign-in and sign-up are checked too, or
 * another site could sign a visitor into an account it controls; without an Origin they stay
 * open to API clients.
 */
function checkSameOrigin(req: RestRequest, services: Services) {
  const origin = req.headers.origin;
  if (origin) {
    if (trustedOrigin(origin, req.caller.host, services)) return;
    throw new GatewayError('CSRF_FAILED', 'Request refused: this origin is not allowed');
  }
  if (OPEN_WRITES.has(req.path) || req.headers['x-requested-with']) return;
  throw new GatewayError('CSRF_FAILED', 'Request refused: send the X-Requested-With header with session cookies');
}
