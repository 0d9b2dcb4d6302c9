// The bare reference: a minimal `ws` server that relays a sender's JSON to every socket in the
// same room. No auth, no database, no GraphQL: the ceiling our server is compared against.
import { WebSocketServer, type WebSocket } from 'ws';

const rooms = new Map<string, Set<WebSocket>>();
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });

wss.on('connection', (socket) => {
  let joined: string | undefined;
  socket.on('message', (raw) => {
    const message = JSON.parse(String(raw)) as { type: 'join' | 'send'; room: string; payload?: unknown };
    if (message.type === 'join') {
      joined = message.room;
      const set = rooms.get(joined) ?? new Set();
      set.add(socket);
      rooms.set(joined, set);
      socket.send('{"type":"joined"}');
    } else {
      const text = JSON.stringify({ type: 'message', payload: message.payload });
      for (const peer of rooms.get(message.room) ?? []) peer.send(text);
      socket.send('{"type":"ack"}');
    }
  });
  socket.on('close', () => joined && rooms.get(joined)?.delete(socket));
});

wss.on('listening', () => {
  const { port } = wss.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}` }));
});
