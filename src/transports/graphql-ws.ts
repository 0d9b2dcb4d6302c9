import { randomUUID } from 'node:crypto';
import type { ExecutionArgs, ExecutionResult } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocket, WebSocketServer } from 'ws';
import { authenticate, bearerToken, type Context, type Services, type Viewer } from '../graphql/context.ts';
import { operationContext, type TransportContext } from '../graphql/yoga.ts';
import { transportContext } from './http.ts';
import { CLOSE_SESSION_ENDED, trackSignedIn, type SocketRegistry } from './socket-registry.ts';

interface ConnectionState {
  token: string | null;
  viewer: Viewer | null;
}

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

/**
 * Subscribers of one conversation who asked for the same selection share one result object
 * (graphql/shared-results.ts); turning it into JSON once for all of them, rather than once per
 * socket, was a tenth of the server's time under load. Our `onNext` sends the `next` frame
 * itself with the shared JSON and hands graphql-ws a stand-in payload, and the socket drops
 * graphql-ws's own frame that carries the stand-in (its key, new at every start, is in no
 * real result).
 */
const SENT_ALREADY = { extensions: { [`sent-${randomUUID()}`]: true } };
const SENT_ALREADY_SUFFIX = `"payload":${JSON.stringify(SENT_ALREADY)}}`;
const resultJson = new WeakMap<ExecutionResult, string>();

function jsonOf(result: ExecutionResult): string {
  let json = resultJson.get(result);
  // GraphQLError's toJSON gives the same error shape graphql-ws itself sends.
  if (json === undefined) resultJson.set(result, (json = JSON.stringify(result)));
  return json;
}

class GraphQLSocket extends WebSocket {
  override send(data: unknown, ...rest: unknown[]): void {
    if (typeof data === 'string' && data.endsWith(SENT_ALREADY_SUFFIX)) {
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return;
    }
    (super.send as (...args: unknown[]) => void)(data, ...rest);
  }
}

/** The token from `connection_init` ({authorization}), or else the upgrade request's header. */
function connectionToken(params: Record<string, unknown> | undefined, headers: Record<string, unknown>) {
  return bearerToken(params?.authorization ?? params?.Authorization ?? params?.token ?? headers.authorization);
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
  const wss = new WebSocketServer({ noServer: true, WebSocket: GraphQLSocket });
  const states = new WeakMap<WebSocket, ConnectionState>();

  useServer(
    {
      execute: (args) => (args as EnvelopedArgs).rootValue.execute(args) as never,
      subscribe: (args) => (args as EnvelopedArgs).rootValue.subscribe(args) as never,
      onConnect: async (ctx) => {
        const { socket, request } = ctx.extra;
        const token = connectionToken(ctx.connectionParams, request.headers);
        const { viewer, authProblem, expiresAt } = await authenticate(services, token);
        if (token && !viewer) {
          socket.close(CLOSE_SESSION_ENDED, `Unauthorized: ${authProblem}`);
          return false;
        }
        states.set(socket, { token, viewer });
        if (viewer) {
          await trackSignedIn(services, registry, viewer, expiresAt!, {
            close: (code, reason) => socket.close(code, reason),
            isClosed: () => socket.readyState >= socket.CLOSING,
            onClose: (done) => socket.once('close', done),
          });
        }
        return true;
      },
      onNext: (ctx, id, _payload, _args, result) => {
        const { socket } = ctx.extra;
        if (socket.readyState === socket.OPEN) socket.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${jsonOf(result)}}`);
        return SENT_ALREADY;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const state = states.get(ctx.extra.socket);
        // The token of connection_init, not a header: browsers cannot set headers on sockets.
        const authorization = state?.token ? `Bearer ${state.token}` : undefined;
        const context = await operationContext(services, transportContext(ctx.extra.request, authorization));
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped(context);
        const document = parse(payload.query);
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        } as EnvelopedArgs;
      },
    },
    wss,
  );
  return wss;
}
