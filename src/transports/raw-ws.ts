import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Services } from '../services/services.ts';
import type { Logger } from '../lib/logger.ts';
import { GatewayError, type Gateway } from '../gateway/gateway.ts';
import { isTransientFailure, logLevelOf } from '../lib/errors.ts';
import type { SocketRegistry } from '../realtime/registry.ts';
import { BusRooms, type RoomMember } from '../realtime/rooms.ts';
import { admit, type Connection, type DialectSession, type Handshake, type WsDialect } from '../realtime/session.ts';

/** Largest frame a client may send: an event and its data, never a file. */
const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Bytes waiting for a client beyond which it counts as not reading: its connection is closed
 * (1013, try again later) rather than let the server hold an unbounded backlog for it. It
 * reconnects and catches up through its dialect's history routes.
 */
export const MAX_SEND_BACKLOG = 4 * 1024 * 1024;
export const CLOSE_TOO_SLOW = 1013;

/** Frames a client may send before its credentials are checked; they are handled in order after. */
const MAX_EARLY_FRAMES = 32;

export interface RawWebSocketServer {
  /** Takes an upgrade routed to `dialect` (by the upgrade route table, with the path's parameters). */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, dialect: WsDialect, params: Record<string, string>): void;
  /** Open connections, for /metrics. */
  readonly clients: Set<WebSocket>;
  close(): void;
}

/**
 * Raw WebSocket (`ws`) for the dialects whose seeds speak it. A connection is a dialect session
 * like a Socket.IO socket: credentials checked on connect (a refused client gets the dialect's
 * `error` frame, then 4401 or 4403), presence, closing on ban, sign-out or token expiry, rooms
 * across instances (through the bus), a bounded send backlog, and pings that drop a peer that
 * stopped answering.
 */
export function createRawWebSocketServer(services: Services, gateway: Gateway, registry: SocketRegistry): RawWebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: true });
  const roomsByDialect = new Map<string, BusRooms>();
  const alive = new WeakSet<WebSocket>();

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      // No pong since the last ping: the peer is gone without saying so (a dropped network).
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, services.config.WS_HEARTBEAT * 1000);
  heartbeat.unref();

  function roomsOf(dialect: WsDialect): BusRooms {
    let rooms = roomsByDialect.get(dialect.name);
    if (!rooms) roomsByDialect.set(dialect.name, (rooms = new BusRooms(services.bus, dialect.name)));
    return rooms;
  }

  async function accept(ws: WebSocket, req: http.IncomingMessage, dialect: WsDialect, params: Record<string, string>) {
    alive.add(ws);
    ws.on('pong', () => alive.add(ws));
    ws.on('error', (err) => services.log.debug({ err, dialect: dialect.name }, 'websocket error'));
    // Frames that come while the credentials are checked wait for the session.
    const early: Array<{ data: WebSocket.RawData; isBinary: boolean }> = [];
    let session: DialectSession | undefined;
    ws.on('message', (data, isBinary) => {
      if (session) return void handleFrame(session, dialect, data, isBinary);
      if (early.push({ data, isBinary }) > MAX_EARLY_FRAMES) ws.close(1008, 'Too many frames before the connection was accepted');
    });

    const url = new URL(req.url ?? '/', 'http://localhost');
    const handshake: Handshake = { headers: req.headers, query: Object.fromEntries(url.searchParams), auth: {}, params, address: req.socket.remoteAddress };
    const admitted = await admit(dialect, handshake, services, gateway);
    if (admitted.refused) {
      const { refused } = admitted;
      if (ws.readyState === ws.OPEN) {
        ws.send(dialect.write('error', refused.data));
        // A close reason may be at most 123 bytes.
        ws.close(refused.closeCode, Buffer.from(refused.message).subarray(0, 123).toString());
      }
      return;
    }
    session = admitted.session;
    session.open(connectionOf(ws, dialect, roomsOf(dialect), services.log), registry);
    for (const frame of early.splice(0)) void handleFrame(session, dialect, frame.data, frame.isBinary);
  }

  return {
    clients: wss.clients,
    handleUpgrade(req, socket, head, dialect, params) {
      wss.handleUpgrade(req, socket, head, (ws) => {
        accept(ws, req, dialect, params).catch((err) => {
          // 1013 "try again later" for a database or Redis away for a moment: clients reconnect.
          const transient = isTransientFailure(err);
          services.log[logLevelOf(err)]({ err, dialect: dialect.name }, 'websocket connection failed');
          ws.close(transient ? 1013 : 1011, transient ? 'Service briefly unavailable; reconnect' : 'Internal server error');
        });
      });
    },
    close() {
      clearInterval(heartbeat);
      for (const ws of wss.clients) ws.close(1001, 'Server shutting down');
    },
  };
}

/** One client frame: the dialect reads it as an event (a frame it cannot read is that event's error). */
function handleFrame(session: DialectSession, dialect: WsDialect, data: WebSocket.RawData, isBinary: boolean) {
  let message;
  try {
    if (isBinary) throw GatewayError.badField('frame', 'must be text');
    message = dialect.read(data.toString());
  } catch (err) {
    session.fail(err, 'message');
    return;
  }
  return session.dispatch(message.event, message.data, undefined, 'refuse');
}

/** The raw WebSocket side of a dialect session. */
function connectionOf(ws: WebSocket, dialect: WsDialect, rooms: BusRooms, log: Logger): Connection {
  const joined = new Set<string>();
  const connection: Connection & RoomMember = {
    send(event, payload) {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_SEND_BACKLOG) {
        ws.close(CLOSE_TOO_SLOW, 'Too slow: messages piled up unread; reconnect and catch up');
        return;
      }
      ws.send(dialect.write(event, payload));
    },
    deliver: (event, payload) => connection.send(event, payload),
    close: (code, reason) => ws.close(code, reason),
    isClosed: () => ws.readyState !== ws.OPEN,
    onClose: (done) => (ws.readyState === ws.CLOSED ? done() : void ws.once('close', () => done())),
    async join(room) {
      if (joined.has(room)) return;
      joined.add(room);
      await rooms.join(room, connection);
    },
    async leave(room) {
      if (!joined.delete(room)) return;
      await rooms.leave(room, connection);
    },
    broadcast: (room, event, payload) => void rooms.broadcast(room, event, payload).catch((err) => log.warn({ err, room }, 'room broadcast failed')),
  };
  // A closed connection leaves its rooms, so an instance stops listening to a room nobody here is in.
  ws.once('close', () => {
    for (const room of joined) void rooms.leave(room, connection);
    joined.clear();
  });
  return connection;
}
