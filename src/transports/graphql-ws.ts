import { setMaxListeners } from 'node:events';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import { authenticate, bearerToken, type Viewer } from '../modules/viewer/viewer.ts';
import { type Context } from '../schema/context.ts';
import { type Services } from '../services/services.ts';
import { AppError, isCodedError, isTransientFailure, unauthenticated } from '../lib/errors.ts';
import { operationContext, type TransportContext } from '../graphql/yoga.ts';
import { transportContext } from './http.ts';
import { countGraphQLOperation, forwarded, limitKey, MAX_JSON_BODY, rateLimited } from '../http/policy.ts';
import { CLOSE_SESSION_ENDED, trackSignedIn, type SocketRegistry } from '../realtime/registry.ts';

interface ConnectionState {
  token: string | null;
  viewer: Viewer | null;
  /**
   * The sign-in with a token that came with an operation rather than with connection_init
   * (see `operationSignIn`): why it was refused, or null once signed in.
   */
  lateSignIn?: Promise<string | null>;
  /** Aborts when the socket closes, so its operations still running stop. */
  closed: AbortSignal;
  /**
   * Operations started and not yet ended. Counted here rather than from graphql-ws's list,
   * which forgets an operation the moment its client sends `complete` while it still runs.
   */
  running: number;
  /** Whom the rate limit counts this socket's operations against (its user, else its address). */
  limitKey: string;
}

/** Largest message a client may send: an operation and its variables, never a file. */
const MAX_MESSAGE_BYTES = MAX_JSON_BODY;

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

/**
 * Bytes waiting in a socket beyond which its client counts as not keeping up: its results then
 * go through graphql-ws's loop, which waits for each write. A client that reads has about none.
 */
const PUSH_BACKLOG_LIMIT = 64 * 1024;

/** The JSON of a result shared by subscribers (graphql/shared-results.ts), made once for all. */
const resultJson = new WeakMap<ExecutionResult, string>();

function jsonOf(result: ExecutionResult): string {
  let json = resultJson.get(result);
  if (json === undefined) resultJson.set(result, (json = JSON.stringify(result)));
  return json;
}

class GraphQLSocket extends WebSocket {
  private holding = false;

  /**
   * Holds this socket's frames until the microtasks now running have run: a query's or
   * mutation's result and the `complete` graphql-ws sends right after it then leave in one
   * write, one system call where there were two. (`_socket` is ws's TCP socket; ws has no
   * public way to batch frames.)
   */
  holdFramesForThisTurn(): void {
    const tcp = (this as unknown as { _socket?: Socket | null })._socket;
    if (!tcp || this.holding) return;
    this.holding = true;
    tcp.cork();
    process.nextTick(() => {
      this.holding = false;
      tcp.uncork();
    });
  }

  /**
   * graphql-ws sends `complete` once the result's frame is written, which while frames are
   * held would be after the uncork, in a write of its own. A held frame is in the socket's
   * buffer, in order, so it counts as sent.
   */
  override send(data: unknown, options?: unknown, cb?: unknown): void {
    const send = super.send as (data: unknown, options?: unknown, cb?: unknown) => void;
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    if (!this.holding) return send.call(this, data, options, cb);
    send.call(this, data, options);
    (cb as (() => void) | undefined)?.();
  }
}

function asErrorResult(err: unknown): ExecutionResult {
  if (isCodedError(err)) return { errors: [err] };
  throw err;
}

/**
 * An error's `http` extension (status and headers for GraphQL over HTTP, which Yoga reads and
 * leaves out of the body) means nothing on a socket, and is left out here too.
 */
function errorWithoutHttp(error: GraphQLError): GraphQLError {
  if (!error.extensions?.http) return error;
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, { nodes: error.nodes, path: error.path, extensions });
}

function withoutHttp(result: ExecutionResult | FormattedExecutionResult): ExecutionResult | FormattedExecutionResult | undefined {
  if (!result.errors?.some((e) => e.extensions?.http)) return undefined;
  return { ...result, errors: (result.errors as GraphQLError[]).map(errorWithoutHttp) };
}

const isSubscription = ({ document, operationName }: ExecutionArgs) => getOperationAST(document, operationName)?.operation === 'subscription';

/** The `Authorization` entry of a headers object, whatever its case (people type both). */
function authorizationIn(headers: unknown): unknown {
  if (!headers || typeof headers !== 'object') return undefined;
  const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization');
  return entry?.[1];
}

/**
 * The token from `connection_init`, or else the upgrade request's header. Our own clients send
 * `{authorization}`; GraphiQL sends what its Headers tab holds, as the payload itself
 * (`{Authorization}`) or under `headers` or `extensions.headers`, depending on its version.
 */
function connectionToken(params: Record<string, unknown> | undefined, headers: Record<string, unknown>) {
  const extensions = params?.extensions as Record<string, unknown> | undefined;
  return bearerToken(
    authorizationIn(params) ?? params?.token ?? authorizationIn(params?.headers) ?? authorizationIn(extensions?.headers) ?? headers.authorization,
  );
}

/**
 * The token an operation carries in its own `extensions.headers`: Yoga's GraphiQL sends its
 * Headers tab there, with each `subscribe`, and an empty `connection_init`.
 */
function operationToken(payload: SubscribePayload): string | null {
  return bearerToken(authorizationIn((payload.extensions as Record<string, unknown> | undefined)?.headers));
}

/**
 * graphql-ws (`graphql-transport-ws`) on /graphql. Every operation goes through Yoga's
 * envelope with a fresh context, so subscriptions get the same auth, validation and masking as
 * HTTP. A signed-in socket counts for presence and is closed (4401) when its token expires.
 */
export function createGraphQLWebSocketServer(
  services: Services,
  yoga: YogaServerInstance<TransportContext, Context>,
  registry: SocketRegistry,
): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, WebSocket: GraphQLSocket, maxPayload: MAX_MESSAGE_BYTES });
  const states = new WeakMap<WebSocket, ConnectionState>();

  /** A signed-in socket counts for presence, and closes on ban, sign-out or token expiry. */
  function track(socket: WebSocket, viewer: Viewer, expiresAt: number) {
    return trackSignedIn(services, registry, viewer, expiresAt, {
      close: (code, reason) => socket.close(code, reason),
      isClosed: () => socket.readyState >= socket.CLOSING,
      onClose: (done) => socket.once('close', done),
    });
  }

  /**
   * Signs a socket opened without a token in with the one its operation carries, as if
   * connection_init had carried it, so the socket is then tracked like any signed-in one.
   * Operations sent together with the same token share one sign-in. A socket signed in with
   * another token keeps it: one socket is one session, which its ban or sign-out closes.
   * Resolves with why the token was refused, or null. Throws when the database does, as
   * onConnect does (graphql-ws then closes the socket with 4500).
   */
  function operationSignIn(socket: WebSocket, state: ConnectionState, token: string): Promise<string | null> {
    if (state.token === token) return state.lateSignIn ?? Promise.resolve(null);
    if (state.token) return Promise.resolve('This socket is signed in with another token; open a new socket to use this one');
    state.token = token;
    state.lateSignIn = (async () => {
      const { viewer, authProblem, expiresAt } = await authenticate(services, token);
      if (!viewer) {
        state.token = null;
        state.lateSignIn = undefined;
        return authProblem;
      }
      state.viewer = viewer;
      // From now on its operations count against the user, as a socket signed in at connect does.
      state.limitKey = limitKey(viewer.id, undefined);
      await track(socket, viewer, expiresAt!);
      return null;
    })();
    return state.lateSignIn;
  }

  /** The operation's envelope and arguments, or the errors that stop it (a syntax error, say). */
  async function prepareOperation(
    extra: { socket: WebSocket; request: http.IncomingMessage },
    state: ConnectionState,
    id: string,
    payload: SubscribePayload,
  ): Promise<EnvelopedArgs | readonly GraphQLError[]> {
    const { socket, request } = extra;
    // The token of connection_init, not a header: browsers cannot set headers on sockets.
    const authorization = state.token ? `Bearer ${state.token}` : undefined;
    const context = await operationContext(services, transportContext(request, services.config, { authorization, signal: state.closed }));
    // The `next` frame graphql-ws would send, with the result's JSON made once for every
    // subscriber it is shared with (turning it into JSON once per socket was a tenth of
    // the server's time under load).
    const frameStart = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
    context.pushResult = (result) => {
      // A closed socket drops the result, as graphql-ws's own send does.
      if (socket.readyState !== socket.OPEN) return true;
      if (socket.bufferedAmount > PUSH_BACKLOG_LIMIT) return false;
      socket.send(`${frameStart}${jsonOf(result)}}`);
      return true;
    };
    const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped(context);
    let document;
    try {
      document = parse(payload.query);
    } catch (err) {
      // A syntax error is this operation's answer, not a reason to drop the socket.
      if ((err as Error)?.name === 'GraphQLError') return [err as GraphQLError];
      throw err;
    }
    const errors = validate(schema, document);
    if (errors.length > 0) return errors;
    // graphql-ws would answer this itself, but without ending the operation (onComplete).
    if (!getOperationAST(document, payload.operationName)) return [new GraphQLError('Unable to identify operation')];
    return {
      schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue: await contextFactory(),
      rootValue: { execute, subscribe },
    } as EnvelopedArgs;
  }

  useServer(
    {
      // A query stopped by its time budget is that operation's error, not a reason to drop the
      // socket (graphql-ws closes it with 4500 when execute throws).
      execute: (args) => {
        let answer;
        try {
          answer = (args as EnvelopedArgs).rootValue.execute(args) as PromiseLike<ExecutionResult> | ExecutionResult;
        } catch (err) {
          return asErrorResult(err);
        }
        return ('then' in answer ? answer.then(undefined, asErrorResult) : answer) as never;
      },
      subscribe: (args) => (args as EnvelopedArgs).rootValue.subscribe(args) as never,
      onConnect: async (ctx) => {
        const { socket, request } = ctx.extra;
        const token = connectionToken(ctx.connectionParams, request.headers);
        let signIn;
        try {
          signIn = await authenticate(services, token);
        } catch (err) {
          if (!isTransientFailure(err)) throw err;
          // The database is away for a moment: 1013 "try again later", and clients reconnect.
          services.log.warn({ err }, 'graphql-ws sign-in failed on a transient fault');
          socket.close(1013, 'Service briefly unavailable; reconnect');
          return false;
        }
        const { viewer, authProblem, expiresAt } = signIn;
        if (token && !viewer) {
          socket.close(CLOSE_SESSION_ENDED, `Unauthorized: ${authProblem}`);
          return false;
        }
        const closed = new AbortController();
        // Each running operation listens to it (at most WS_MAX_OPERATIONS): not a leak to warn of.
        setMaxListeners(services.config.WS_MAX_OPERATIONS + 10, closed.signal);
        socket.once('close', () => closed.abort());
        const address = forwarded(services.config, request.headers, request.socket.remoteAddress).address;
        states.set(socket, { token, viewer, closed: closed.signal, running: 0, limitKey: limitKey(viewer?.id, address) });
        if (viewer) await track(socket, viewer, expiresAt!);
        return true;
      },
      onComplete: (ctx) => {
        const state = states.get(ctx.extra.socket);
        if (state) state.running--;
      },
      onNext: (ctx, _id, _payload, args, result) => {
        if (!isSubscription(args)) (ctx.extra.socket as GraphQLSocket).holdFramesForThisTurn();
        return withoutHttp(result);
      },
      onError: (_ctx, _id, _payload, errors) => errors.map(errorWithoutHttp),
      onSubscribe: async (ctx, id, payload) => {
        const state = states.get(ctx.extra.socket);
        if (!state) return [new GraphQLError('Unauthorized')];
        if (state.running >= services.config.WS_MAX_OPERATIONS) {
          return [
            new AppError('RATE_LIMITED', `At most ${services.config.WS_MAX_OPERATIONS} operations may run at once on one socket; complete some first`, {
              reason: 'TOO_MANY_OPERATIONS',
            }),
          ];
        }
        // Its place is taken before anything is awaited, so operations sent together are counted
        // in the order they came; it is given back when the operation does not start, or by
        // onComplete, which graphql-ws calls once a started operation has ended.
        state.running++;
        let started = false;
        try {
          const token = operationToken(payload);
          if (token) {
            const refused = await operationSignIn(ctx.extra.socket, state, token);
            if (refused) return [unauthenticated(refused)];
          }
          // Counted with GraphQL over HTTP (one count per user or address); no Redis command when limits are off.
          if (services.limits.enabled) {
            const limit = await countGraphQLOperation(services, state.limitKey);
            if (limit && !limit.allowed) return [rateLimited(limit)];
          }
          const prepared = await prepareOperation(ctx.extra, state, id, payload);
          started = !Array.isArray(prepared);
          return prepared;
        } finally {
          if (!started) state.running--;
        }
      },
    },
    wss,
  );
  return wss;
}
