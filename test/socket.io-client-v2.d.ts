/** The few parts of socket.io-client 2.x (installed as socket.io-client-v2) the tests use. */
declare module 'socket.io-client-v2' {
  interface V2Socket {
    connected: boolean;
    on(event: string, listener: (...args: any[]) => void): V2Socket;
    once(event: string, listener: (...args: any[]) => void): V2Socket;
    off(event: string, listener?: (...args: any[]) => void): V2Socket;
    emit(event: string, ...args: any[]): V2Socket;
    close(): void;
  }
  function io(url: string, options?: Record<string, unknown>): V2Socket;
  export = io;
}
