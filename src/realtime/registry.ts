import type { Services } from '../services/services.ts';
import type { Viewer } from '../modules/viewer/viewer.ts';
import type { BusEvent } from '../lib/events.ts';

/** A live client connection of any protocol, as far as session control needs to know it. */
export interface LiveSocket {
  userId: number;
  deviceId: number;
  close(code: number, reason: string): void;
}

export const CLOSE_SESSION_ENDED = 4401;
export const CLOSE_BANNED = 4403;

/**
 * The signed-in sockets open on this instance, so a ban or a sign-out heard on the control
 * topic (from any instance) closes them here.
 */
export class SocketRegistry {
  private readonly byUser = new Map<number, Set<LiveSocket>>();

  add(socket: LiveSocket): () => void {
    const set = this.byUser.get(socket.userId) ?? new Set();
    set.add(socket);
    this.byUser.set(socket.userId, set);
    return () => {
      set.delete(socket);
      if (set.size === 0 && this.byUser.get(socket.userId) === set) this.byUser.delete(socket.userId);
    };
  }

  handleControl(event: BusEvent): void {
    if (event.type === 'userBanned') {
      for (const socket of this.byUser.get(event.userId) ?? []) socket.close(CLOSE_BANNED, 'Forbidden: account banned');
    } else if (event.type === 'deviceRevoked') {
      for (const socket of this.byUser.get(event.userId) ?? []) {
        if (socket.deviceId === event.deviceId) socket.close(CLOSE_SESSION_ENDED, 'Unauthorized: session ended');
      }
    }
  }

  closeAll(code: number, reason: string): void {
    for (const set of this.byUser.values()) for (const socket of set) socket.close(code, reason);
  }

  get size(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }
}

/** What `trackSignedIn` needs of a connection, whatever its protocol. */
export interface TrackedConnection {
  close(code: number, reason: string): void;
  isClosed(): boolean;
  onClose(done: () => void): void;
}

/**
 * A signed-in connection (graphql-ws or Socket.IO): counted for presence while open, closed by
 * a ban or sign-out heard on the control topic, and closed (4401) when its token expires so the
 * client reconnects with a fresh one.
 */
export async function trackSignedIn(services: Services, registry: SocketRegistry, viewer: Viewer, expiresAt: number, connection: TrackedConnection) {
  const close = (code: number, reason: string) => connection.close(code, reason);
  const unregister = registry.add({ userId: viewer.id, deviceId: viewer.deviceId, close });
  const release = await services.presence.connect(viewer.id);
  const expiry = setTimeout(() => close(CLOSE_SESSION_ENDED, 'Unauthorized: access token expired'), Math.min(2 ** 31 - 1, Math.max(0, expiresAt - Date.now())));
  const cleanup = () => {
    clearTimeout(expiry);
    unregister();
    void release();
  };
  if (connection.isClosed()) cleanup();
  else connection.onClose(cleanup);
}
