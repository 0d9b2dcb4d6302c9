import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

/** A Socket.IO client of a dialect namespace, resolved once connected (rejects on connect_error). */
export function connectIo(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): Promise<Socket> {
  const socket = io(url, { reconnection: false, forceNew: true, transports: ['websocket'], ...options });
  return connected(socket);
}

/** Resolves when `socket` connects; rejects with the server's refusal (connect_error). */
export function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** The next `event` whose payload passes `match`. */
export function nextIo<T = any>(socket: Socket, event: string, match: (payload: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (payload: T) => {
      if (!match(payload)) return;
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
  });
}

/** Collects every `event` payload from now on, to check later that something did not arrive. */
export function recordIo<T = any>(socket: Socket, event: string): T[] {
  const seen: T[] = [];
  socket.on(event, (payload: T) => seen.push(payload));
  return seen;
}
