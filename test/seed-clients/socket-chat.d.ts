// Types for the seed's untyped client classes, so the tests can subclass and call them.
import type { Socket } from 'socket.io-client';

export class ChatService {
  constructor(token: string);
  socket: Socket;
  sendMessage(toEmail: string, message: string): void;
  joinConversation(conversationId: string): void;
  startTyping(conversationId: string): void;
  stopTyping(conversationId: string): void;
}

export class ChatAPI {
  constructor(token: string);
  getConversations(): Promise<any>;
  getMessages(conversationId: string, skip?: number, limit?: number): Promise<any>;
  sendMessage(toEmail: string, message: string): Promise<any>;
  searchUsers(query: string): Promise<any>;
}
