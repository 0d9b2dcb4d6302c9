import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { corsOrigins, type Config } from '../config.ts';
import { bearerToken } from '../modules/viewer/viewer.ts';
import type { Services } from '../services/services.ts';
import { AppError } from '../lib/errors.ts';
import { addressKey, clientAddress } from '../lib/client-address.ts';
import { rateLimitHeaders, type LimitResult } from '../lib/rate-limit.ts';

/**
 * The one HTTP policy: what every surface of the server (/graphql over HTTP and multipart, the
 * dialects' REST routes, file links, /health, /metrics, 404s, and Socket.IO's handshake) does
 * alike, decided here once: CORS, the forwarded headers of a proxy, request ids, security
 * headers, body limits, and the rate limit of GraphQL operations (graphql-ws included).
 */

/**
 * Largest JSON a client may send in one piece: a GraphQL request, a dialect route's JSON or
 * form, a graphql-ws message, a multipart form's fields. Files go by multipart, with their own
 * limit (MAX_UPLOAD_BYTES).
 */
export const MAX_JSON_BODY = 1024 * 1024;

/** What a cross-origin page may do with an answer: read it (from `origin`), with cookies or not. */
export interface CorsDecision {
  /** The Access-Control-Allow-Origin value: the page's own origin, or `*`. */
  origin: string;
  credentials: boolean;
}

/**
 * The one CORS rule. An origin CORS_ORIGINS lists by name may read answers with credentials
 * (cookies cross origins only to it); with `*` in the list any other page may read answers
 * of requests that carry no credentials; any other origin gets no CORS headers at all.
 */
export function corsDecision(config: Config, origin: string | undefined): CorsDecision | null {
  if (!origin) return null;
  const listed = corsOrigins(config);
  if (listed.includes(origin)) return { origin, credentials: true };
  if (listed.includes('*')) return { origin: '*', credentials: false };
  return null;
}

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
/** Asked for when a preflight does not say which headers it wants. */
const ALLOWED_HEADERS = 'Content-Type, Authorization, X-Requested-With, X-Request-Id';
/** Response headers a cross-origin script may read besides the basic ones. */
const EXPOSED_HEADERS = 'X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After';
/** Seconds a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE = 600;

/** What a request says about how the client reached us. */
export interface Forwarded {
  /** The host the client asked for (for absolute links); undefined when it named none we can use. */
  host: string | undefined;
  proto: 'http' | 'https';
  /** The client's address (for limits counted per client). */
  address: string;
}

/** A host name or address with an optional port: nothing that could change a link's shape. */
const SANE_HOST = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

const saneHost = (host: string | undefined) => (host && SANE_HOST.test(host) ? host : undefined);

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(',')[0].trim();

/**
 * Host, protocol and client address of a request or socket handshake. X-Forwarded-For, -Host
 * and -Proto are read only with TRUST_PROXY=true: without a proxy of ours in front, any client
 * could write them, and make our links point elsewhere or count as someone else. A trusted
 * proxy appends the address to X-Forwarded-For (its last entry counts) and sets the other two.
 */
export function forwarded(config: Config, headers: http.IncomingHttpHeaders, socketAddress: string | undefined): Forwarded {
  const trusted = config.TRUST_PROXY === 'true';
  return {
    host: (trusted ? saneHost(first(headers['x-forwarded-host'])) : undefined) ?? saneHost(headers.host),
    proto: forwardedProto(config, headers),
    address: clientAddress(headers, socketAddress, trusted),
  };
}

function forwardedProto(config: Config, headers: http.IncomingHttpHeaders): 'http' | 'https' {
  return config.TRUST_PROXY === 'true' && first(headers['x-forwarded-proto'])?.toLowerCase() === 'https' ? 'https' : 'http';
}

/** A request id a client may choose (to find its request in our logs): short, no spaces or quotes. */
const SANE_REQUEST_ID = /^[\w.:@=+/-]{1,128}$/;

/** The client's own X-Request-Id when it is sane, else a new one. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** Whether a request to /graphql asks for GraphiQL (Yoga's own test: a browser's GET). */
export function wantsGraphiQL(req: http.IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

/**
 * Applies the policy to a request before any surface answers it: gives it a request id (set in
 * its headers for the context, and on the response), the CORS headers its Origin earns, the
 * security headers, and answers a CORS preflight (OPTIONS) itself, the same on every path.
 * Headers set here are defaults: a surface that sets one of them itself (Yoga, say) wins.
 * Returns true when the request has been answered.
 */
export function applyHttpPolicy(config: Config, req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
  const id = requestIdOf(req.headers['x-request-id']);
  req.headers['x-request-id'] = id;
  res.setHeader('x-request-id', id);

  const cors = corsDecision(config, req.headers.origin);
  // Whether an answer carries CORS headers depends on the Origin: a shared cache must keep
  // answers apart by it, whatever this request sent.
  res.setHeader('vary', 'Origin');
  if (cors) {
    res.setHeader('access-control-allow-origin', cors.origin);
    if (cors.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  }

  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  // Files may be shown in a frame of the app's own pages (a PDF or video preview), which can be
  // on another origin; nothing else is meant to be framed. Answers are data, never a page to
  // run, so they may load nothing; GraphiQL's page runs its own inline start-up script and
  // loads its scripts, styles and editor workers from this server (graphql/graphiql-page.ts).
  if (!pathname.startsWith('/files/') && !pathname.startsWith('/avatars/')) {
    res.setHeader('x-frame-options', 'DENY');
    const graphiql = pathname === '/graphql' && wantsGraphiQL(req);
    res.setHeader('content-security-policy', graphiql ? "frame-ancestors 'none'" : "default-src 'none'; frame-ancestors 'none'");
  }
  // Only a client that reached us over https (through a proxy we trust) may be told to keep to it.
  if (forwardedProto(config, req.headers) === 'https') res.setHeader('strict-transport-security', 'max-age=15552000');

  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, {
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    ...(cors
      ? {
          'access-control-allow-methods': ALLOWED_METHODS,
          'access-control-allow-headers': req.headers['access-control-request-headers'] ?? ALLOWED_HEADERS,
          'access-control-max-age': String(PREFLIGHT_MAX_AGE),
        }
      : {}),
  });
  res.end();
  return true;
}

/**
 * Whether `req` still has a body nobody read: an answer sent now should close the connection,
 * or Node would read (and drop) the rest of an upload the client keeps sending.
 */
export function hasUnreadBody(req: http.IncomingMessage): boolean {
  return !req.readableEnded && (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined);
}

/**
 * Why a GraphQL request's body is refused before Yoga reads it, if it is: Yoga would read any
 * body into memory whole, so its size must be known (a Content-Length, as every GraphQL client
 * sends) and at most MAX_JSON_BODY.
 */
export function graphqlBodyRefusal(req: http.IncomingMessage): { status: number; code: string; message: string } | null {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return null;
  const length = req.headers['content-length'];
  if (length === undefined) {
    if (!req.headers['transfer-encoding']) return null;
    return { status: 411, code: 'BAD_USER_INPUT', message: 'Send the request with a Content-Length header' };
  }
  if (Number(length) > MAX_JSON_BODY) {
    return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: `A GraphQL request may be at most ${MAX_JSON_BODY} bytes; send files by multipart upload` };
  }
  return null;
}

/**
 * Whom a limit counts: the signed-in user (by a valid access token's subject, checked by its
 * signature alone, which is cached), else the client's address (an IPv6 client by its /64).
 */
export function requesterKey(services: Services, authorization: unknown, address: string | undefined): string {
  const token = bearerToken(authorization);
  if (token) {
    try {
      return limitKey(services.tokens.verifyAccess(token).sub, address);
    } catch {
      // Not a token of ours (or expired): counted as the address it comes from.
    }
  }
  return limitKey(null, address);
}

/** The key a limit counts: the user when there is one, else the address. */
export function limitKey(userId: string | number | null | undefined, address: string | undefined): string {
  return userId != null ? `user:${userId}` : `ip:${addressKey(address ?? 'unknown')}`;
}

/**
 * Counts one GraphQL operation (HTTP, multipart or graphql-ws; all share one count per user or
 * address, across instances with Redis): GRAPHQL_RATE_LIMIT a minute for a user,
 * GRAPHQL_RATE_LIMIT_ANONYMOUS for an address before sign-in. One Redis command, none when
 * RATE_LIMITS=off (null then).
 */
export function countGraphQLOperation(services: Services, key: string): Promise<LimitResult | null> {
  const { config } = services;
  const anonymous = key.startsWith('ip:');
  const points = anonymous ? config.GRAPHQL_RATE_LIMIT_ANONYMOUS : config.GRAPHQL_RATE_LIMIT;
  return services.limits.consume(anonymous ? 'graphql-anonymous' : 'graphql', { points, seconds: 60 }, key);
}

/** The error of an operation refused by its limit: when the limit resets, and how long to wait. */
export function rateLimited(result: LimitResult): AppError {
  return new AppError('RATE_LIMITED', `Rate limit exceeded; try again in ${result.retryAfter} seconds`, {
    limit: result.limit,
    retryAfter: result.retryAfter,
    reset: result.reset,
  });
}

/**
 * Counts a GraphQL request over HTTP against its sender's limit and puts the X-RateLimit-*
 * headers on its answer; resolves with the error to answer (429) when it is over the limit.
 * GraphiQL's page is not an operation and is not counted.
 */
export async function limitGraphQLRequest(services: Services, req: http.IncomingMessage, res: http.ServerResponse): Promise<AppError | null> {
  if (!services.limits.enabled || wantsGraphiQL(req)) return null;
  const address = forwarded(services.config, req.headers, req.socket.remoteAddress).address;
  const result = await countGraphQLOperation(services, requesterKey(services, req.headers.authorization, address));
  if (!result) return null;
  for (const [name, value] of Object.entries(rateLimitHeaders(result))) res.setHeader(name, value);
  return result.allowed ? null : rateLimited(result);
}
