import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server, type Namespace, type Socket } from 'socket.io';
import type { Services } from '../services/services.ts';
import type { Gateway } from '../gateway/gateway.ts';
import { applyHttpPolicy } from '../http/policy.ts';
import type { SocketRegistry } from '../realtime/registry.ts';
import { admit, type Connection, type Handshake, type SessionUser, type SocketIoDialect } from '../realtime/session.ts';

export interface SocketIoServer {
  io: Server;
  /** Takes a WebSocket upgrade of /socket.io/ (the upgrade route table hands it over). */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Disconnects this instance's sockets and its adapter's Redis clients (not the HTTP server). */
  close(): Promise<void>;
}

/**
 * Socket.IO on /socket.io/ of the one HTTP server, one namespace per dialect. With REDIS_URL
 * the Redis adapter makes rooms and broadcasts span instances (its own two connections: a
 * subscribed connection cannot publish). Clients of Socket.IO v2 (protocol 3, the
 * Flask-SocketIO era) are accepted too; they have no `auth`, so they send the token in the
 * query.
 */
export function createSocketIoServer(
  server: http.Server,
  services: Services,
  gateway: Gateway,
  registry: SocketRegistry,
  dialects: SocketIoDialect[],
): SocketIoServer {
  const io = new Server({
    serveClient: false,
    allowEIO3: true,
  });
  // Plain HTTP requests (polling) reach engine.io through its own listener on the server; its
  // WebSocket upgrades come from our upgrade route table, which owns every upgrade.
  const otherUpgradeListeners = new Set(server.listeners('upgrade'));
  io.attach(server, { destroyUpgrade: false });
  for (const listener of server.listeners('upgrade')) {
    if (!otherUpgradeListeners.has(listener)) server.off('upgrade', listener as () => void);
  }
  // engine.io answers its HTTP requests (handshakes, polling) before our request listener sees
  // them: the HTTP policy runs here for them, so they get the request id, CORS (preflights
  // answered by the policy) and security headers of every other path.
  io.engine.use((req: http.IncomingMessage, res: http.ServerResponse, next: () => void) => {
    if (!applyHttpPolicy(services.config, req, res, '/socket.io/')) next();
  });
  const redis: Redis[] = [];
  if (services.config.REDIS_URL) {
    const pub = new Redis(services.config.REDIS_URL, { lazyConnect: false });
    const sub = pub.duplicate();
    redis.push(pub, sub);
    io.adapter(createAdapter(pub, sub, { requestsTimeout: 3000 }));
  }
  for (const dialect of dialects) bindNamespace(io.of(dialect.namespace), dialect, services, gateway, registry);
  return {
    io,
    handleUpgrade: (req, socket, head) => io.engine.handleUpgrade(req, socket, head),
    async close() {
      for (const dialect of dialects) io.of(dialect.namespace).local.disconnectSockets(true);
      io.engine.close();
      await Promise.all(redis.map(closeWhenSettled));
    },
  };
}

/** A Socket.IO handshake in the form every transport gives its dialects. */
function handshakeOf(socket: Socket): Handshake {
  const { headers, query, auth, address } = socket.handshake;
  const first: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(query)) first[name] = Array.isArray(value) ? value[0] : value;
  return { headers, query: first, auth: auth && typeof auth === 'object' ? auth : {}, params: {}, address };
}

/** Socket.IO's side of a dialect session: events, rooms (across instances through the adapter), close. */
function connectionOf(socket: Socket): Connection {
  return {
    send: (event, payload) => void socket.emit(event, payload),
    close: () => void socket.disconnect(true),
    isClosed: () => socket.disconnected,
    onClose: (done) => (socket.disconnected ? done() : void socket.once('disconnect', () => done())),
    join: async (room) => socket.join(room),
    leave: async (room) => socket.leave(room),
    broadcast: (room, event, payload) => void socket.nsp.to(room).emit(event, payload),
    // Other instances answer from their sockets' data, set at connect.
    members: async (room) => (await socket.nsp.in(room).fetchSockets()).map((s) => s.data.user as SessionUser),
  };
}

/**
 * Credentials are checked in the handshake (a refused client gets connect_error and no
 * socket); the session opens once the socket is connected (during the middleware it still
 * counts as disconnected).
 */
function bindNamespace(nsp: Namespace, dialect: SocketIoDialect, services: Services, gateway: Gateway, registry: SocketRegistry) {
  const sessions = new WeakMap<Socket, Awaited<ReturnType<typeof admit>>['session']>();
  nsp.use(async (socket, next) => {
    const { session, refused } = await admit(dialect, handshakeOf(socket), services, gateway);
    if (refused) return next(refused);
    socket.data.user = session.user;
    sessions.set(socket, session);
    next();
  });
  nsp.on('connection', (socket) => {
    const session = sessions.get(socket)!;
    for (const name of Object.keys(dialect.events)) {
      socket.on(name, (...args: unknown[]) => {
        const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (reply: unknown) => void) : undefined;
        void session.dispatch(name, args[0], ack);
      });
    }
    session.open(connectionOf(socket), registry);
  });
}

/**
 * Quits one of the adapter's Redis clients. A client still connecting holds the adapter's
 * SUBSCRIBE commands, and quitting it then rejects them where nobody listens (an instance
 * stopped right after it started did so): it is given a moment to connect first.
 */
async function closeWhenSettled(client: Redis): Promise<void> {
  if (client.status === 'connecting' || client.status === 'connect' || client.status === 'wait') {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  await client.quit().catch(() => client.disconnect());
}
