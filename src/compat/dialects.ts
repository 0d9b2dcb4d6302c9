import type { RestDialect } from './rest.ts';
import { socketChatRest } from './socket-chat/rest.ts';
import { socketChatSocket } from './socket-chat/socket.ts';
import type { SocketDialect } from './sockets.ts';

/** Every dialect this server speaks: its REST routes under its mount, its Socket.IO namespace. */
export const restDialects: RestDialect[] = [socketChatRest];
export const socketDialects: SocketDialect[] = [socketChatSocket];
