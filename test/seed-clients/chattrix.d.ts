// Types for the seed's untyped examples, so the tests can hand them a browser's globals.
import type { Socket } from 'socket.io-client';

export interface ChattrixUser {
  id: number;
  username: string;
  display_name: string;
  profile_pic: string;
}

export function completeChatImplementation(page: {
  io: (url: string) => Socket;
  fetch: typeof fetch;
  document: { getElementById(id: string): EventTarget };
  console: { log(...args: unknown[]): void };
  displayMessage(message: any): void;
  showTypingIndicator(user: ChattrixUser): void;
  hideTypingIndicator(user: ChattrixUser): void;
}): { socket: Socket; sendMessage(content: string): void };

export function fileUploadWithProgress(page: { fetch: typeof fetch }): (file: Blob, conversationId: number) => Promise<Response | undefined>;
