// Types for the seed's untyped client module, so the test can drive its socket.
import type { Socket } from 'socket.io-client';

export const socket: Socket;
