import { getOperationAST, GraphQLError } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from '../lib/logger.ts';
import { createContext, type Context, type Services } from './context.ts';
import { corsOrigins } from '../config.ts';
import { schema } from './schema.ts';
import { SharedEventResults } from './shared-results.ts';

/** What a transport hands to the context factory besides Yoga's own request. */
export interface TransportContext {
  authorization?: unknown;
  requestId?: string;
  host?: string;
  forwardedProto?: string;
}

/** Echoes the request id on every response so a client can quote it when reporting a problem. */
function requestIdHeader(): Plugin<Context> {
  return {
    onResponse({ request, response, serverContext }) {
      const id = (serverContext as { requestId?: string } | undefined)?.requestId ?? request.headers.get('x-request-id');
      if (id) response.headers.set('x-request-id', id);
    },
  };
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
          const codes = errors.map((e) => String(e.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
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
      log.error({ err }, args.filter((a) => !(a instanceof Error)).map(String).join(' ') || 'graphql error');
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

/** Turns any other error into "Unexpected error." and logs what it was. */
export function maskError(log: Logger) {
  return (error: unknown, message: string): Error => {
    if (isIntendedError(error)) return error as Error;
    const original = (error as GraphQLError).originalError ?? error;
    log.error({ err: original, path: (error as GraphQLError).path }, 'unexpected error in operation');
    return new GraphQLError(message, { path: (error as GraphQLError).path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
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
    cors: {
      origin: services.config.CORS_ORIGINS === '*' ? undefined : corsOrigins(services.config),
      credentials: true,
    },
    graphiql: { title: 'Chat API', subscriptionsProtocol: 'WS' },
    landingPage: false,
    plugins: [requestIdHeader(), operationLog(), eventResults.plugin()],
    context: (initial) => {
      // Yoga merges what this returns into the starting context, which is complete already.
      if (builtByTransport.has(initial)) return {} as Context;
      const { request, authorization, requestId, host, forwardedProto } = initial;
      return createContext(services, {
        authorization: authorization ?? request?.headers.get('authorization'),
        requestId: requestId ?? request?.headers.get('x-request-id'),
        host: host ?? request?.headers.get('x-forwarded-host') ?? request?.headers.get('host'),
        forwardedProto: forwardedProto ?? request?.headers.get('x-forwarded-proto'),
      });
    },
  });
}
