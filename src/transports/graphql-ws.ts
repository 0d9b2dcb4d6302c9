import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticate, bearerToken, type Context, type Services, type Viewer } from '../graphql/context.ts';
import type { TransportContext } from '../graphql/yoga.ts';
import { transportContext } from './http.ts';
import { CLOSE_SESSION_ENDED, trackSignedIn, type SocketRegistry } from './socket-registry.ts';

interface ConnectionState {
  token: string | null;
  viewer: Viewer | null;
}

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };
};

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
  const wss = new WebSocketServer({ noServer: true });
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
      onSubscribe: async (ctx, _id, payload) => {
        const state = states.get(ctx.extra.socket);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          // The token of connection_init, not a header: browsers cannot set headers on sockets.
          ...transportContext(ctx.extra.request, state?.token ? `Bearer ${state.token}` : undefined),
        });
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
