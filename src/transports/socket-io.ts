import type http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import type { Gateway } from '../compat/gateway.ts';
import { bindSocketDialect, type SocketDialect } from '../compat/sockets.ts';
import type { Services } from '../graphql/context.ts';
import { socketIoCors } from './http-policy.ts';
import type { SocketRegistry } from './socket-registry.ts';

export interface SocketIoServer {
  io: Server;
  /** Disconnects this instance's sockets and its adapter's Redis clients (not the HTTP server). */
  close(): Promise<void>;
}

/**
 * Socket.IO on /socket.io/ of the one HTTP server, one namespace per dialect. With REDIS_URL
 * the Redis adapter makes rooms and broadcasts span instances (its own two connections: a
 * subscribed connection cannot publish).
 */
export function createSocketIoServer(
  server: http.Server,
  services: Services,
  gateway: Gateway,
  registry: SocketRegistry,
  dialects: SocketDialect[],
): SocketIoServer {
  const io = new Server(server, {
    serveClient: false,
    // The HTTP policy's CORS rule, as on every other path: cookies cross origins only to those listed by name.
    cors: socketIoCors(services.config),
    // Other upgrades (/graphql) are ours to handle, not engine.io's to destroy.
    destroyUpgrade: false,
  });
  const redis: Redis[] = [];
  if (services.config.REDIS_URL) {
    const pub = new Redis(services.config.REDIS_URL, { lazyConnect: false });
    const sub = pub.duplicate();
    redis.push(pub, sub);
    io.adapter(createAdapter(pub, sub, { requestsTimeout: 3000 }));
  }
  for (const dialect of dialects) bindSocketDialect(io.of(dialect.namespace), dialect, services, gateway, registry);
  return {
    io,
    async close() {
      for (const dialect of dialects) io.of(dialect.namespace).local.disconnectSockets(true);
      io.engine.close();
      await Promise.all(redis.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}
