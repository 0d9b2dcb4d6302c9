import type http from 'node:http';
import { getOperationAST, GraphQLError } from 'graphql';
import { createGraphQLError, createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { forwarded } from '../http/policy.ts';
import type { Logger } from '../lib/logger.ts';
import { isTransientFailure, unavailable } from '../lib/errors.ts';
import { isDataException } from '../lib/validation.ts';
import { createContext, type Context } from '../schema/context.ts';
import { type Services } from '../services/services.ts';
import { graphiqlOptions } from './graphiql.ts';
import { renderGraphiQLPage } from './graphiql-page.ts';
import { inputChecks } from './input.ts';
import { queryLimits } from './limits.ts';
import { schema } from './schema.ts';
import { SharedEventResults } from './shared-results.ts';

/** What a transport hands to the context factory besides Yoga's own request. */
export interface TransportContext {
  authorization?: unknown;
  requestId?: string;
  host?: string;
  forwardedProto?: string;
  /** Where the client connects from (TRUST_PROXY decides whether X-Forwarded-For counts). */
  clientAddress?: string;
  /** Aborts once the client is gone (its request closed, its socket disconnected). */
  signal?: AbortSignal;
}

/**
 * One structured line per operation (at debug level, so LOG_LEVEL=debug turns it on) with its
 * request id, name, duration and error codes; operations that failed unexpectedly at warn.
 */
function operationLog(): Plugin<Context> {
  return {
    onExecute({ args }) {
      const started = performance.now();
      const ctx = args.contextValue as Context;
      const operation = getOperationAST(args.document, args.operationName)?.name?.value;
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? (result.errors ?? []) : [];
          const codes = errors.map((e) => String(e.extensions?.code ?? (inputFault(e.originalError) ? 'BAD_USER_INPUT' : 'INTERNAL_SERVER_ERROR')));
          const entry = { operation, ms: Math.round(performance.now() - started), userId: ctx.viewer?.id, errors: codes.length ? codes : undefined };
          if (codes.includes('INTERNAL_SERVER_ERROR')) ctx.log.warn(entry, 'operation failed');
          else ctx.log.debug(entry, 'operation');
        },
      };
    },
  };
}

function yogaLogger(log: Logger) {
  return {
    debug: (...args: unknown[]) => log.debug(args.map(String).join(' ')),
    info: (...args: unknown[]) => log.info(args.map(String).join(' ')),
    warn: (...args: unknown[]) => log.warn(args.map(String).join(' ')),
    error: (...args: unknown[]) => {
      const err = args.find((a) => a instanceof Error);
      const message = args.filter((a) => !(a instanceof Error)).map(String).join(' ') || 'graphql error';
      // The client's own input refused by a library, or a transient fault: maskError has logged it as such.
      const original = err && ((err as GraphQLError).originalError ?? err);
      if (original && (inputFault(original) || isTransientFailure(original))) return log.debug({ err }, message);
      log.error({ err }, message);
    },
  };
}

/**
 * A GraphQL error we meant to send (validation, or an `AppError` with a code), as opposed to an
 * exception from a bug or the database. Checked by name rather than `instanceof`, which fails
 * when two copies of `graphql` are loaded (as under Vitest's module runner).
 */
function isIntendedError(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'GraphQLError') return false;
  const original = (error as GraphQLError).originalError;
  return original == null || isIntendedError(original);
}

/**
 * Why the client's own input failed in a library rather than in one of our rules, if it did:
 * Pothos refuses bad paging arguments and cursors (`first: -1`), and the database refuses
 * values no rule caught. Those are the client's bad input, not our failure.
 */
function inputFault(original: unknown): string | null {
  if ((original as Error)?.name === 'PothosValidationError') return (original as Error).message;
  if (isDataException(original)) return 'A value in this request is not valid here (out of range, or not storable text)';
  return null;
}

/** Turns any other error into "Unexpected error." and logs what it was. */
export function maskError(log: Logger) {
  return (error: unknown, message: string): Error => {
    if (isIntendedError(error)) return error as Error;
    const { path, nodes } = error as GraphQLError;
    const original = (error as GraphQLError).originalError ?? error;
    if (isTransientFailure(original)) {
      // The database or Redis failed for a moment: the client may retry, and is told so.
      log.warn({ err: original, path }, 'operation failed on a transient fault; answered UNAVAILABLE');
      return unavailable({ path });
    }
    const fault = inputFault(original);
    if (fault) {
      log.warn({ err: original, path }, 'input refused by a library or the database');
      return new GraphQLError(fault, { path, nodes, extensions: { code: 'BAD_USER_INPUT' } });
    }
    log.error({ err: original, path }, 'unexpected error in operation');
    return new GraphQLError(message, { path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}

/**
 * `variables` or `extensions` that are not JSON, in a GET query string or a form-encoded POST,
 * are the client's mistake: Yoga would answer them with a 500.
 */
function queryStringJson(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (req) => {
        try {
          return await requestParser(req);
        } catch (err) {
          if (!(err instanceof SyntaxError)) throw err;
          throw createGraphQLError('The variables and extensions query parameters must be JSON objects', {
            extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
          });
        }
      });
    },
  };
}

/** Contexts a transport built before asking for the envelope (see `operationContext`). */
const builtByTransport = new WeakSet<object>();

/**
 * Builds an operation's context up front, for a transport that asks Yoga for the envelope
 * itself (graphql-ws): given as the envelope's starting context, it is used as it is. Yoga would
 * otherwise copy a fresh context's 25 fields into the starting object for every operation,
 * which showed in profiles as a tenth of the cost of a message sent over a socket.
 */
export async function operationContext(services: Services, transport: TransportContext): Promise<Context> {
  let context;
  try {
    context = await createContext(services, transport);
  } catch (err) {
    // As Yoga masks a failing context factory: the client learns nothing of the database.
    throw maskError(services.log)(err, 'Unexpected error.');
  }
  builtByTransport.add(context);
  return context;
}

/**
 * The one GraphQL envelope: HTTP, graphql-ws and (later) every dialect run operations through
 * it, so they share context, auth, validation and error masking.
 */
export function createGraphQLServer(
  services: Services,
  eventResults = new SharedEventResults(),
): YogaServerInstance<TransportContext, Context> {
  return createYoga<TransportContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    logging: yogaLogger(services.log),
    // Unexpected errors (database, bugs) reach the client as "Unexpected error." only.
    maskedErrors: { maskError: maskError(services.log) },
    // No CORS headers of Yoga's own: the HTTP policy (http/policy.ts) answers preflights and
    // sets CORS headers (and request ids) on /graphql as on every other path, before Yoga.
    cors: false,
    graphiql: graphiqlOptions,
    // Its scripts and styles from this server, not a CDN.
    renderGraphiQL: renderGraphiQLPage,
    landingPage: false,
    plugins: [queryStringJson(), inputChecks(), ...queryLimits(services.config), operationLog(), eventResults.plugin()],
    context: (initial) => {
      // Yoga merges what this returns into the starting context, which is complete already.
      if (builtByTransport.has(initial)) return {} as Context;
      const { request, authorization, requestId } = initial;
      const req = (initial as { req?: http.IncomingMessage }).req;
      const via = req ? forwarded(services.config, req.headers, req.socket.remoteAddress) : undefined;
      return createContext(services, {
        authorization: authorization ?? request?.headers.get('authorization'),
        requestId: requestId ?? request?.headers.get('x-request-id'),
        host: initial.host ?? via?.host,
        forwardedProto: initial.forwardedProto ?? via?.proto,
        clientAddress: initial.clientAddress ?? via?.address,
        signal: initial.signal ?? request?.signal,
      });
    },
  });
}
