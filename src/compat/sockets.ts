import { setMaxListeners } from 'node:events';
import type { Namespace, Socket } from 'socket.io';
import { authenticate, bearerToken, type Services, type Viewer } from '../graphql/context.ts';
import { forwarded, type Forwarded } from '../transports/http-policy.ts';
import type { SocketRegistry } from '../transports/socket-registry.ts';
import { trackSignedIn } from '../transports/socket-registry.ts';
import { GatewayError, type Caller, type Data, type Gateway } from './gateway.ts';

/** Why a socket was refused at connect: the client's `connect_error` carries it in `data`. */
export class ConnectRefused extends Error {
  constructor(
    message: string,
    readonly data: unknown,
  ) {
    super(message);
  }
}

/**
 * A dialect's Socket.IO namespace: how its clients present credentials, what each client event
 * does, and how an error reaches the client. Server events come from GraphQL subscriptions
 * started with `session.follow`.
 */
export interface SocketDialect {
  namespace: string;
  /**
   * The access token in the handshake (auth, query or cookie); null when there is none. May
   * throw a ConnectRefused to refuse the handshake for another reason.
   */
  token(socket: Socket, services: Services, gateway: Gateway): Promise<string | null>;
  /** The refusal a client without valid credentials gets (as connect_error). */
  refuse(reason: string): ConnectRefused;
  onConnect?(session: SocketSession): Promise<void>;
  onDisconnect?(session: SocketSession): Promise<void>;
  events: Record<string, (session: SocketSession, data: Data) => Promise<unknown>>;
  /** The payload of the `error` event for a failed client event. */
  errorPayload(err: GatewayError, event: string): unknown;
}

/**
 * One connected, signed-in socket of a dialect: runs documents as its user (a fresh context
 * per event) and keeps its subscriptions, which end when it disconnects.
 */
export class SocketSession {
  private readonly follows = new Map<string, AsyncIterableIterator<Data>>();
  /** Aborts on disconnect, so the socket's operations still running stop. */
  private readonly gone = new AbortController();
  /** Client events being handled now (bounded per socket, as graphql-ws operations are). */
  running = 0;
  /** Where the client connects from and the host it asked for, as its handshake said. */
  private readonly via: Forwarded;

  constructor(
    readonly socket: Socket,
    readonly viewer: Viewer,
    private readonly token: string,
    private readonly gateway: Gateway,
    private readonly dialect: SocketDialect,
    private readonly services: Services,
  ) {
    // Each event being handled listens to it (at most WS_MAX_OPERATIONS): not a leak to warn of.
    setMaxListeners(services.config.WS_MAX_OPERATIONS + 10, this.gone.signal);
    this.via = forwarded(services.config, socket.handshake.headers, socket.handshake.address);
  }

  get caller(): Caller {
    // A fresh object each time: Yoga adds the operation's context to the one it is given.
    const { host, proto, address } = this.via;
    return { authorization: `Bearer ${this.token}`, host, forwardedProto: proto, clientAddress: address, signal: this.gone.signal };
  }

  run(document: string, variables: Record<string, unknown> = {}): Promise<Data> {
    return this.gateway.run(document, variables, this.caller);
  }

  /**
   * Starts (or restarts) the subscription named `key`; each event's data goes to `onEvent`.
   * Resolves once it listens; rejects with the reason it could not start (FORBIDDEN, say).
   * A subscription that ends with an error (a member removed) tells the client so.
   */
  async follow(key: string, document: string, variables: Record<string, unknown>, onEvent: (data: Data) => void | Promise<void>): Promise<void> {
    await this.unfollow(key);
    const events = await this.gateway.subscribe(document, variables, this.caller);
    if (this.socket.disconnected) {
      await events.return?.();
      return;
    }
    // Two follows of one key may overlap (a client joining twice at once): the later one stays.
    const earlier = this.follows.get(key);
    this.follows.set(key, events);
    await earlier?.return?.();
    void (async () => {
      try {
        for await (const data of events) await onEvent(data);
      } catch (err) {
        this.fail(err, key);
      } finally {
        if (this.follows.get(key) === events) this.follows.delete(key);
      }
    })();
  }

  following(key: string): boolean {
    return this.follows.has(key);
  }

  async unfollow(key: string): Promise<void> {
    const events = this.follows.get(key);
    this.follows.delete(key);
    await events?.return?.();
  }

  async close(): Promise<void> {
    this.gone.abort();
    await Promise.all([...this.follows.keys()].map((key) => this.unfollow(key)));
  }

  /** Tells the client why an event failed, in the dialect's `error` event; returns what it sent. */
  fail(err: unknown, event: string): unknown {
    if (!(err instanceof GatewayError)) {
      this.services.log.error({ err, event, namespace: this.dialect.namespace }, 'socket event failed');
    }
    const failure = err instanceof GatewayError ? err : new GatewayError('INTERNAL_SERVER_ERROR', 'Internal server error');
    const payload = this.dialect.errorPayload(failure, event);
    this.socket.emit('error', payload);
    return payload;
  }
}

/**
 * Binds a dialect to its namespace: credentials are checked at connect (a refused client gets
 * connect_error and no socket), the socket counts for presence and closes on ban, sign-out or
 * token expiry like any other, and each client event runs through the gateway.
 */
export function bindSocketDialect(nsp: Namespace, dialect: SocketDialect, services: Services, gateway: Gateway, registry: SocketRegistry) {
  const sessions = new WeakMap<Socket, SocketSession>();
  const expiries = new WeakMap<Socket, number>();
  nsp.use(async (socket, next) => {
    try {
      const token = await dialect.token(socket, services, gateway);
      const { viewer, authProblem, expiresAt } = await authenticate(services, bearerToken(token));
      if (!viewer || !token) return next(dialect.refuse(authProblem ?? 'Authentication required'));
      socket.data.user = { id: viewer.id, username: viewer.user.username, email: viewer.user.email, displayName: viewer.user.displayName };
      sessions.set(socket, new SocketSession(socket, viewer, token, gateway, dialect, services));
      expiries.set(socket, expiresAt!);
      next();
    } catch (err) {
      // A dialect refusing for its own reason (a foreign Origin, say) says so itself.
      if (err instanceof ConnectRefused) return next(err);
      services.log.error({ err }, 'socket handshake failed');
      next(dialect.refuse('Internal server error'));
    }
  });
  nsp.on('connection', (socket) => {
    const session = sessions.get(socket)!;
    for (const [name, handler] of Object.entries(dialect.events)) {
      socket.on(name, async (...args: unknown[]) => {
        const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (reply: unknown) => void) : null;
        const data = args[0] && typeof args[0] === 'object' ? (args[0] as Data) : {};
        const max = services.config.WS_MAX_OPERATIONS;
        if (session.running >= max) {
          ack?.(session.fail(new GatewayError('RATE_LIMITED', `At most ${max} events may be handled at once on one socket`), name));
          return;
        }
        session.running++;
        try {
          const reply = await handler(session, data);
          ack?.(reply ?? { success: true });
        } catch (err) {
          const payload = session.fail(err, name);
          ack?.(payload);
        } finally {
          session.running--;
        }
      });
    }
    socket.once('disconnect', () => {
      void session.close();
      void dialect.onDisconnect?.(session).catch((err) => services.log.warn({ err }, 'socket disconnect handler failed'));
    });
    void (async () => {
      // Only now is the socket connected (during the middleware it counts as disconnected).
      await trackSignedIn(services, registry, session.viewer, expiries.get(socket)!, {
        close: () => socket.disconnect(true),
        isClosed: () => socket.disconnected,
        onClose: (done) => socket.once('disconnect', done),
      });
      await dialect.onConnect?.(session);
    })().catch((err) => session.fail(err, 'connect'));
  });
}
