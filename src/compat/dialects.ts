import { chattrixRest } from './chattrix/rest.ts';
import { chattrixSocket } from './chattrix/socket.ts';
import { flaskChatRest } from './flask-chat/rest.ts';
import { flaskChatSocket } from './flask-chat/socket.ts';
import type { RestDialect } from './rest.ts';
import { socketChatRest } from './socket-chat/rest.ts';
import { socketChatSocket } from './socket-chat/socket.ts';
import type { SocketIoDialect, WsDialect } from '../realtime/session.ts';

/** Every dialect this server speaks: its REST routes under its mount, its Socket.IO namespace or WebSocket path. */
export const restDialects: RestDialect[] = [chattrixRest, flaskChatRest, socketChatRest];
export const socketDialects: SocketIoDialect[] = [chattrixSocket, flaskChatSocket, socketChatSocket];
/** Raw WebSocket dialects, each on its own path (fastapi-chat and chatrix come here). */
export const wsDialects: WsDialect[] = [];
