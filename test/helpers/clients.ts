import { print, type ExecutionResult } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { Register } from './operations.ts';
import { uniqueName, type TestServer } from './server.ts';

export interface GqlError {
  message: string;
  extensions?: { code?: string; fields?: Record<string, string>; [key: string]: unknown };
}
export type GqlResult<T> = Omit<ExecutionResult<T>, 'errors'> & { errors?: GqlError[] };

/** POSTs one operation to /graphql as any HTTP client would. */
export async function gql<TResult, TVariables>(
  server: Pick<TestServer, 'url'>,
  document: TypedDocumentNode<TResult, TVariables>,
  variables?: TVariables,
  token?: string,
  headers: Record<string, string> = {},
): Promise<GqlResult<TResult>> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await res.json()) as GqlResult<TResult>;
}

/** The code of the first error, for assertions such as `expect(code(r)).toBe('CONFLICT')`. */
export const code = (result: GqlResult<unknown>) => result.errors?.[0]?.extensions?.code;

export interface SignedUp {
  id: string;
  username: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

export async function signUp(server: Pick<TestServer, "url">, input: Partial<{ username: string; password: string; email: string; phone: string; displayName: string; deviceId: string }> = {}): Promise<SignedUp> {
  const username = input.username ?? uniqueName();
  const password = input.password ?? 'correct horse battery';
  const result = await gql(server, Register, { input: { ...input, username, password } });
  if (!result.data) throw new Error(`sign-up failed: ${JSON.stringify(result.errors)}`);
  const { accessToken, refreshToken, user } = result.data.register;
  return { id: user.id, username: user.username, password, accessToken, refreshToken };
}

export interface WsConnection {
  client: Client;
  /** Resolves with the close code and reason once the server (or we) close the socket. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once the server acknowledged the connection. */
  connected: Promise<void>;
  /** The client's socket, once connected (to stop and resume reading, say). */
  socket: Promise<WebSocket>;
}

/** A graphql-ws client as an app would open it, authenticated by `connection_init`. */
export function connectWs(server: Pick<TestServer, 'wsUrl'>, token?: string): WsConnection {
  let onClosed!: (value: { code: number; reason: string }) => void;
  let onConnected!: (socket: WebSocket) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClosed = resolve));
  const socket = new Promise<WebSocket>((resolve) => (onConnected = resolve));
  const connected = socket.then(() => undefined);
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    on: {
      connected: (ws) => onConnected(ws as WebSocket),
      closed: (event) => {
        const e = event as { code: number; reason: string | Buffer };
        onClosed({ code: e.code, reason: String(e.reason) });
      },
    },
    onNonLazyError: () => {},
  });
  return { client, closed, connected, socket };
}

/** Subscribes and returns an iterator whose `next()` waits for the next event. */
export function subscribe<TResult, TVariables>(
  connection: WsConnection,
  document: TypedDocumentNode<TResult, TVariables>,
  variables?: TVariables,
): AsyncIterableIterator<GqlResult<TResult>> {
  return connection.client.iterate({ query: print(document), variables: variables as Record<string, unknown> }) as AsyncIterableIterator<GqlResult<TResult>>;
}

/** The next event, or a failure naming what did not arrive within `ms`. */
export async function nextEvent<T>(iterator: AsyncIterator<T>, what = 'event', ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    if (result.done) throw new Error(`subscription ended before ${what}`);
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}
