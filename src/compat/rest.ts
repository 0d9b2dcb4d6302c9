import type http from 'node:http';
import * as cookie from 'cookie';
import { authenticate, bearerToken } from '../modules/viewer/viewer.ts';
import { type Services } from '../services/services.ts';
import { clientGoneSignal, sendJson, transportContext } from '../transports/http.ts';
import { hasUnreadBody, MAX_JSON_BODY, requesterKey } from '../http/policy.ts';
import { formTmpDir, MultipartError, readForm, type FormFile } from '../transports/multipart.ts';
import { GatewayError, type Caller, type Data, type Gateway } from '../gateway/gateway.ts';
import { logLevelOf } from '../lib/errors.ts';
import type { Run } from './shared.ts';
import { rateLimitHeaders, type Limit } from '../lib/rate-limit.ts';

/** A file of a multipart request, kept in a temporary file until the route is done. */
export type UploadedFile = FormFile;

export interface RestRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** JSON, form or multipart fields. */
  body: Data;
  files: Record<string, UploadedFile>;
  headers: http.IncomingHttpHeaders;
  cookies: Record<string, string | undefined>;
  /** Who the route runs as; a dialect's `authorize` may replace it (cookies). */
  caller: Caller;
  /** The instance's services, for settings a route answers with (token lifetimes, say). */
  services: Services;
  /** Runs a GraphQL document as the caller. */
  run: Run;
}

export interface SetCookie {
  name: string;
  value: string;
  options: cookie.SerializeOptions;
}

export interface RestReply {
  status: number;
  body: unknown;
  cookies?: SetCookie[];
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** The seed's path after the mount, with `:name` parameters. */
  path: string;
  /** Which documented rate limit counts this route (a key of the dialect's `limits`). */
  limit?: string;
  /** Largest multipart file accepted, bytes; routes without it take no files. */
  maxFileBytes?: number;
  handle(req: RestRequest): Promise<RestReply>;
}

export interface RestDialect {
  name: string;
  mount: string;
  routes: Route[];
  /** The seed's error body (and status, when it differs from `statusOf`). */
  errorReply(err: GatewayError, req: RestRequest | null): RestReply;
  /** Turns the request's credentials into a caller; may refuse, or set cookies (sessions). */
  authorize?(req: RestRequest, services: Services, gateway: Gateway): Promise<SetCookie[] | void>;
  /** Rate limits by name; `default` counts routes without a `limit`. */
  limits?: Record<string, Limit>;
}

/** The HTTP status a CONTRACT error code means, unless a dialect says otherwise. */
export function statusOf(code: string): number {
  const statuses: Record<string, number> = {
    UNAUTHENTICATED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    BAD_USER_INPUT: 400,
    CONFLICT: 409,
    RATE_LIMITED: 429,
    PAYLOAD_TOO_LARGE: 413,
    METHOD_NOT_ALLOWED: 405,
    UNAVAILABLE: 503,
  };
  return statuses[code] ?? 500;
}

interface CompiledRoute {
  route: Route;
  pattern: RegExp;
  names: string[];
}

/**
 * Serves the REST routes of the dialects: finds the route, parses the body, authorizes, counts
 * the rate limit, runs the route's GraphQL documents through the gateway and writes the seed's
 * JSON. Every failure becomes the dialect's own error body.
 */
export class RestRouter {
  private readonly dialects: Array<{ dialect: RestDialect; routes: CompiledRoute[] }>;

  constructor(
    private readonly services: Services,
    private readonly gateway: Gateway,
    dialects: RestDialect[],
  ) {
    this.dialects = dialects.map((dialect) => ({ dialect, routes: dialect.routes.map(compile) }));
  }

  /** Handles the request if it is under a dialect's mount; false otherwise. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
    const entry = this.dialects.find(({ dialect }) => url.pathname === dialect.mount || url.pathname.startsWith(`${dialect.mount}/`));
    if (!entry) return false;
    void this.serve(entry.dialect, entry.routes, req, res, url).catch((err) => {
      const failure = GatewayError.unexpected(err);
      this.services.log[logLevelOf(err)]({ err }, 'dialect route failed');
      if (!res.headersSent) this.write(res, entry.dialect.errorReply(failure, null), retryAfterHeader(failure));
      else res.destroy();
    });
    return true;
  }

  private async serve(dialect: RestDialect, routes: CompiledRoute[], req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const subpath = url.pathname.slice(dialect.mount.length).replace(/(.)\/$/, '$1') || '/';
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const candidates = routes.map((r) => ({ r, match: r.pattern.exec(subpath) })).filter((c) => c.match);
    const found = candidates.find((c) => c.r.route.method === method);
    if (!found) {
      const err = candidates.length
        ? new GatewayError('METHOD_NOT_ALLOWED', 'Method not allowed')
        : new GatewayError('NOT_FOUND', 'Not found');
      return this.write(res, dialect.errorReply(err, null));
    }
    const { route } = found.r;
    let params: Record<string, string>;
    try {
      params = Object.fromEntries(found.r.names.map((n, i) => [n, decodeURIComponent(found.match![i + 1])]));
    } catch {
      return this.write(res, dialect.errorReply(new GatewayError('NOT_FOUND', 'Not found'), null));
    }
    const cleanup: Array<() => Promise<void>> = [];
    const request: RestRequest = {
      method,
      path: subpath,
      params,
      query: url.searchParams,
      body: {},
      files: {},
      headers: req.headers,
      cookies: cookie.parse(req.headers.cookie ?? ''),
      caller: transportContext(req, this.services.config, { signal: clientGoneSignal(res) }),
      services: this.services,
      run: (document, ...[variables]) => this.gateway.run(document, variables, request.caller),
    };
    const setCookies: SetCookie[] = [];
    let headers: Record<string, string> = {};
    try {
      // Who is asking and whether they are over their limit are settled before a byte of the
      // body is read, so neither a stranger nor a flood makes the server store an upload.
      setCookies.push(...((await dialect.authorize?.(request, this.services, this.gateway)) ?? []));
      const limit = dialect.limits?.[route.limit ?? 'default'];
      if (limit) {
        const who = requesterKey(this.services, request.caller.authorization, request.caller.clientAddress);
        const result = await this.services.limits.consume(`${dialect.name}:${route.limit ?? 'default'}`, limit, who);
        if (result) {
          headers = rateLimitHeaders(result);
          if (!result.allowed) {
            throw new GatewayError('RATE_LIMITED', `Rate limit exceeded; try again in ${result.retryAfter} seconds`, {}, { retryAfter: result.retryAfter });
          }
        }
      }
      // Every route that takes files needs a signed-in user: a stranger's upload is refused unread.
      if (route.maxFileBytes && !(await authenticate(this.services, bearerToken(request.caller.authorization))).viewer) {
        throw new GatewayError('UNAUTHENTICATED', 'Authentication required');
      }
      await this.readBody(req, request, route.maxFileBytes ?? 0, cleanup);
      const reply = await route.handle(request);
      this.write(res, { ...reply, cookies: [...setCookies, ...(reply.cookies ?? [])] }, headers);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      const reply = dialect.errorReply(err, request);
      // Refused before its body was read (signed out, over a limit): the rest is not wanted.
      if (hasUnreadBody(req)) headers = { ...headers, connection: 'close' };
      headers = { ...retryAfterHeader(err), ...headers };
      this.write(res, { ...reply, cookies: [...setCookies, ...(reply.cookies ?? [])] }, headers);
    } finally {
      await Promise.all(cleanup.map((discard) => discard()));
    }
  }

  private write(res: http.ServerResponse, reply: RestReply, headers: Record<string, string> = {}) {
    const cookies = (reply.cookies ?? []).map((c) => cookie.serialize(c.name, c.value, c.options));
    sendJson(res, reply.status, reply.body, { ...headers, ...(cookies.length ? { 'set-cookie': cookies } : {}) });
  }

  private async readBody(req: http.IncomingMessage, request: RestRequest, maxFileBytes: number, cleanup: Array<() => Promise<void>>) {
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (!req.headers['content-length'] && !req.headers['transfer-encoding']) return;
    if (type.startsWith('multipart/form-data')) return this.readMultipart(req, request, maxFileBytes, cleanup);
    const text = await readText(req);
    if (!text) return;
    if (type.startsWith('application/x-www-form-urlencoded')) {
      request.body = Object.fromEntries(new URLSearchParams(text));
      return;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) request.body = parsed as Data;
      else throw new Error('not an object');
    } catch {
      throw new GatewayError('BAD_USER_INPUT', 'The request body must be a JSON object', { body: 'must be a JSON object' });
    }
  }

  /**
   * Multipart forms: fields by name, files in temporary files until the route is done (a form
   * may send a file before the fields that say where it goes), refused past `maxFileBytes`.
   * Routes that take no file (`maxFileBytes` 0) read the fields and skip any file unread.
   */
  private async readMultipart(req: http.IncomingMessage, request: RestRequest, maxFileBytes: number, cleanup: Array<() => Promise<void>>) {
    let form;
    try {
      form = await readForm(req, { tmpDir: formTmpDir(this.services.config), maxFileBytes, maxFiles: 5, maxFields: 50, maxFieldBytes: MAX_JSON_BODY });
    } catch (err) {
      if (!(err instanceof MultipartError)) throw err;
      const limit = err.code === 'PAYLOAD_TOO_LARGE' ? { limit: maxFileBytes } : {};
      throw new GatewayError(err.code, err.message, err.code === 'BAD_USER_INPUT' ? { body: err.message } : {}, limit);
    }
    cleanup.push(form.discard);
    Object.assign(request.body, form.fields);
    // An empty file input is sent as a part without a name: no file was chosen.
    for (const file of form.files) if (file.filename) request.files[file.field] = file;
  }
}

/** `Retry-After` for an answer that says when to come back (a transient failure, a limit). */
function retryAfterHeader(err: GatewayError): Record<string, string> {
  const seconds = err.extensions.retryAfter;
  return typeof seconds === 'number' ? { 'retry-after': String(seconds) } : {};
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/\/$/, '').replace(/:([a-z_]+)/gi, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route, names, pattern: new RegExp(`^${source || '/'}$`) };
}

async function readText(req: http.IncomingMessage): Promise<string> {
  const tooLarge = () => new GatewayError('PAYLOAD_TOO_LARGE', 'Request body too large', {}, { limit: MAX_JSON_BODY });
  // A body that says it is too large is refused unread; one that does not say is cut off.
  if (Number(req.headers['content-length'] ?? 0) > MAX_JSON_BODY) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BODY) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
