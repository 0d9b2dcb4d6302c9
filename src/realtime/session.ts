import { setMaxListeners } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { authenticate, bearerToken, type Viewer } from '../modules/viewer/viewer.ts';
import { type Services } from '../services/services.ts';
import { GatewayError, type Caller, type Data, type Gateway, type VariablesArg } from '../gateway/gateway.ts';
import { logLevelOf } from '../lib/errors.ts';
import { forwarded, type Forwarded } from '../http/policy.ts';
import { CLOSE_BANNED, CLOSE_SESSION_ENDED, trackSignedIn, type SocketRegistry } from './registry.ts';

/**
 * The realtime side of a dialect, whatever carries it: a table of client events, each one or a
 * few named GraphQL operations, and server events that come from GraphQL subscriptions started
 * with `session.follow`. Socket.IO (transports/socket-io.ts) and raw WebSocket
 * (transports/raw-ws.ts) are thin adapters onto it, so a dialect is written once.
 */
export interface RealtimeDialect {
  /** For logs and for the names of its rooms on the bus. */
  name: string;
  /**
   * The access token the client presented, or null when there is none. Throwing a
   * ConnectRefused refuses the client for another reason (a foreign Origin, say); any other
   * throw refuses it as an internal error and is logged.
   */
  token(handshake: Handshake, services: Services, gateway: Gateway): Promise<string | null>;
  /** The refusal a client without valid credentials gets. */
  refuse(reason: string): ConnectRefused;
  /** Runs once the connection counts as signed in; a throw is sent to the client as an `error`. */
  onConnect?(session: DialectSession): Promise<void>;
  /** Runs after the connection closed and its subscriptions ended; a throw is logged. */
  onDisconnect?(session: DialectSession): Promise<void>;
  /**
   * Client events by name. What a handler returns is the acknowledgement (Socket.IO's ack);
   * what it throws becomes the dialect's `error` event (and the ack), and the connection stays.
   */
  events: Record<string, (session: DialectSession, data: Data) => Promise<unknown>>;
  /** The payload of the `error` event for a failed client event. */
  errorPayload(err: GatewayError, event: string): unknown;
}

/** What a connecting client presented, in the same form for every transport. */
export interface Handshake {
  headers: IncomingHttpHeaders;
  /** The query string, first value of each name. */
  query: Record<string, string | undefined>;
  /** Socket.IO's `auth` object (v3 and later clients); empty elsewhere. */
  auth: Record<string, unknown>;
  /** The route's path parameters (`/fastapi-chat/ws/:user_id` gives `user_id`). */
  params: Record<string, string>;
  /** The peer's address as the socket saw it (the client's, or a proxy's). */
  address: string | undefined;
}

/** The token a client sends as `auth.token` (Socket.IO v3+) or `?token=` (v2 and raw WebSocket); null without one. */
export function handshakeToken(handshake: Handshake): string | null {
  const token = handshake.auth.token ?? handshake.query.token;
  return typeof token === 'string' && token ? token : null;
}

/** Why a client was refused at connect. Socket.IO clients get `data` in `connect_error`. */
export class ConnectRefused extends Error {
  constructor(
    message: string,
    readonly data: unknown,
    /** The close code a raw WebSocket client gets after the refusal: 4401 unless it is about more than credentials. */
    readonly closeCode: number = CLOSE_SESSION_ENDED,
  ) {
    super(message);
  }
}

/** A refusal for a reason other than credentials (4403 on raw WebSocket). */
export function forbiddenAtConnect(message: string, data: unknown): ConnectRefused {
  return new ConnectRefused(message, data, CLOSE_BANNED);
}

/** A connection's user as the dialects name them in events (and as other instances see them in a room). */
export interface SessionUser {
  id: number;
  username: string;
  email: string | null;
  displayName: string | null;
}

/** What a transport adapter does for one connection; the session uses nothing else of it. */
export interface Connection {
  /** Sends a server event. A connection that cannot keep up is closed by the adapter. */
  send(event: string, payload: unknown): void;
  close(code: number, reason: string): void;
  isClosed(): boolean;
  /** Runs `done` once, when the connection has closed (at once if it has). */
  onClose(done: () => void): void;
  join(room: string): Promise<void>;
  leave(room: string): Promise<void>;
  /** Sends to every connection in `room` of this dialect, on every instance, this one included if it joined. */
  broadcast(room: string, event: string, payload: unknown): void;
  /** The users of the connections in `room` on every instance (Socket.IO only: its adapter can ask the others). */
  members?(room: string): Promise<SessionUser[]>;
}

/**
 * One connected, signed-in client of a dialect: runs documents as its user (a fresh context
 * per event) and keeps its subscriptions, which end when it disconnects.
 */
export class DialectSession {
  private readonly follows = new Map<string, AsyncIterableIterator<unknown>>();
  /** Aborts on disconnect, so the connection's operations still running stop. */
  private readonly gone = new AbortController();
  /** Client events being handled now (bounded per connection, as graphql-ws operations are). */
  private running = 0;
  /** Where the client connects from and the host it asked for (behind a trusted proxy, what it forwarded). */
  private readonly via: Forwarded;
  readonly user: SessionUser;
  private connection?: Connection;

  constructor(
    readonly viewer: Viewer,
    private readonly token: string,
    /** When the access token stops working (ms): the connection closes then with 4401. */
    private readonly expiresAt: number,
    readonly handshake: Handshake,
    private readonly gateway: Gateway,
    private readonly dialect: RealtimeDialect,
    private readonly services: Services,
  ) {
    // Each event being handled listens to it (at most WS_MAX_OPERATIONS): not a leak to warn of.
    setMaxListeners(services.config.WS_MAX_OPERATIONS + 10, this.gone.signal);
    this.via = forwarded(services.config, handshake.headers, handshake.address);
    const { user } = viewer;
    this.user = { id: viewer.id, username: user.username, email: user.email, displayName: user.displayName };
  }

  private get conn(): Connection {
    if (!this.connection) throw new Error('The session has no connection yet');
    return this.connection;
  }

  get caller(): Caller {
    // A fresh object each time: Yoga adds the operation's context to the one it is given.
    const { host, proto, address } = this.via;
    return { authorization: `Bearer ${this.token}`, host, forwardedProto: proto, clientAddress: address, signal: this.gone.signal };
  }

  run<R, V>(document: TypedDocumentNode<R, V>, ...[variables]: VariablesArg<V>): Promise<R> {
    return this.gateway.run(document, variables, this.caller);
  }

  /** Sends a server event to this client. */
  send(event: string, payload: unknown): void {
    this.conn.send(event, payload);
  }

  join(room: string): Promise<void> {
    return this.conn.join(room);
  }

  leave(room: string): Promise<void> {
    return this.conn.leave(room);
  }

  /** Sends to everyone in `room`, on every instance (this client too, if it joined). */
  broadcast(room: string, event: string, payload: unknown): void {
    this.conn.broadcast(room, event, payload);
  }

  /** The users in `room` on every instance, where the transport can tell. */
  members(room: string): Promise<SessionUser[]> {
    if (!this.conn.members) throw new Error(`The ${this.dialect.name} transport cannot list a room's members`);
    return this.conn.members(room);
  }

  get isClosed(): boolean {
    return this.connection?.isClosed() ?? false;
  }

  /**
   * Starts (or restarts) the subscription named `key`; each event's data goes to `onEvent`.
   * Resolves once it listens; rejects with the reason it could not start (FORBIDDEN, say).
   * A subscription that ends with an error (a member removed) tells the client so.
   */
  async follow<R, V>(key: string, document: TypedDocumentNode<R, V>, variables: V, onEvent: (data: R) => void | Promise<void>): Promise<void> {
    await this.unfollow(key);
    const events = await this.gateway.subscribe(document, variables, this.caller);
    if (this.isClosed || this.gone.signal.aborted) {
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

  async unfollow(key: string): Promise<void> {
    const events = this.follows.get(key);
    this.follows.delete(key);
    await events?.return?.();
  }

  /** Tells the client why an event failed, in the dialect's `error` event; returns what it sent. */
  fail(err: unknown, event: string): unknown {
    const failure = err instanceof GatewayError ? err : GatewayError.unexpected(err);
    if (!(err instanceof GatewayError)) {
      this.services.log[logLevelOf(err)]({ err, event, dialect: this.dialect.name }, 'socket event failed');
    }
    const payload = this.dialect.errorPayload(failure, event);
    if (!this.isClosed) this.send('error', payload);
    return payload;
  }

  /**
   * Handles one client event: its handler's answer goes to `ack` (if the transport has one),
   * a failure to the dialect's `error` event. An unknown event is an error only where the
   * transport has no events of its own (`unknown: 'refuse'`).
   */
  async dispatch(event: string, data: unknown, ack?: (reply: unknown) => void, unknown: 'ignore' | 'refuse' = 'ignore'): Promise<void> {
    const handler = Object.hasOwn(this.dialect.events, event) ? this.dialect.events[event] : undefined;
    // (`ack?.(this.fail(…))` would not fail at all without an ack: `?.` skips its arguments too.)
    const failed = (err: unknown) => {
      const payload = this.fail(err, event);
      ack?.(payload);
    };
    if (!handler) {
      if (unknown === 'refuse') failed(new GatewayError('BAD_USER_INPUT', `Unknown event: ${event}`, { type: 'unknown event' }));
      return;
    }
    const max = this.services.config.WS_MAX_OPERATIONS;
    if (this.running >= max) {
      failed(new GatewayError('RATE_LIMITED', `At most ${max} events may be handled at once on one connection`));
      return;
    }
    this.running++;
    try {
      const reply = await handler(this, data && typeof data === 'object' && !Array.isArray(data) ? (data as Data) : {});
      ack?.(reply ?? { success: true });
    } catch (err) {
      failed(err);
    } finally {
      this.running--;
    }
  }

  /**
   * The connection is open: it counts for presence, closes on a ban, a sign-out or its token's
   * expiry like any other, and the dialect's onConnect runs. Its end stops everything it runs.
   */
  open(connection: Connection, registry: SocketRegistry): void {
    this.connection = connection;
    connection.onClose(() => {
      this.gone.abort();
      void Promise.all([...this.follows.keys()].map((key) => this.unfollow(key)))
        .then(() => this.dialect.onDisconnect?.(this))
        .catch((err) => this.services.log.warn({ err, dialect: this.dialect.name }, 'socket disconnect handler failed'));
    });
    void (async () => {
      await trackSignedIn(this.services, registry, this.viewer, this.expiresAt, connection);
      if (!connection.isClosed()) await this.dialect.onConnect?.(this);
    })().catch((err) => this.fail(err, 'connect'));
  }
}

/**
 * Checks a connecting client's credentials: a session to open, or the refusal to give it
 * (the dialect's own, or its `refuse` for missing or bad credentials).
 */
export async function admit(
  dialect: RealtimeDialect,
  handshake: Handshake,
  services: Services,
  gateway: Gateway,
): Promise<{ session: DialectSession; refused?: undefined } | { refused: ConnectRefused; session?: undefined }> {
  try {
    const token = await dialect.token(handshake, services, gateway);
    const { viewer, authProblem, expiresAt } = await authenticate(services, bearerToken(token));
    if (!viewer || !token) return { refused: dialect.refuse(authProblem ?? 'Authentication required') };
    return { session: new DialectSession(viewer, token, expiresAt!, handshake, gateway, dialect, services) };
  } catch (err) {
    if (err instanceof ConnectRefused) return { refused: err };
    const failure = GatewayError.unexpected(err);
    services.log[logLevelOf(err)]({ err, dialect: dialect.name }, 'socket handshake failed');
    return { refused: dialect.refuse(failure.message) };
  }
}

/** A dialect carried by Socket.IO, in its own namespace. */
export interface SocketIoDialect extends RealtimeDialect {
  namespace: string;
}

/** A dialect carried by raw WebSocket: its path, and how its frames read and write. */
export interface WsDialect extends RealtimeDialect {
  /** The path clients connect to; `:name` segments become `handshake.params`. */
  path: string;
  /** A client's text frame as an event and its data; throws a GatewayError for a frame it cannot read. */
  read(frame: string): { event: string; data: unknown };
  /** A server event as the text frame its client gets. */
  write(event: string, payload: unknown): string;
}

/** Frames as JSON objects `{"type": event, "data": payload}`, the common shape of raw WebSocket chat APIs. */
export const typedJsonFrames: Pick<WsDialect, 'read' | 'write'> = {
  read(frame) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(frame);
    } catch {
      throw GatewayError.badField('frame', 'must be JSON');
    }
    const { type, data } = (parsed ?? {}) as { type?: unknown; data?: unknown };
    if (typeof type !== 'string' || type === '') throw GatewayError.badField('type', 'is required');
    return { event: type, data: data ?? {} };
  },
  write: (event, payload) => JSON.stringify({ type: event, data: payload }),
};
