import type http from 'node:http';
import type { Config } from '../config.ts';
import type { TransportContext } from '../graphql/yoga.ts';
import { forwarded, hasUnreadBody, requestIdOf } from '../http/policy.ts';

/** Writes a JSON response: the one way our own (non-Yoga) routes answer. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A request refused outside GraphQL execution (before its body is read, say), in the shape
 * GraphQL clients read errors from; a body still unread is not wanted, so the connection closes.
 */
export function sendGraphQLError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  extensions: Record<string, unknown> = {},
) {
  sendJson(res, status, { errors: [{ message, extensions: { ...extensions, code } }] }, hasUnreadBody(req) ? { connection: 'close' } : {});
}

/**
 * What a Node request (an HTTP request or a WebSocket upgrade) tells the context factory:
 * credentials, request id, the host the client used (for absolute links), where it connects
 * from, and a signal that aborts once it is gone.
 */
export function transportContext(
  req: http.IncomingMessage,
  config: Config,
  options: { authorization?: unknown; signal?: AbortSignal } = {},
): TransportContext {
  const via = forwarded(config, req.headers, req.socket.remoteAddress);
  return {
    authorization: 'authorization' in options ? options.authorization : req.headers.authorization,
    // An HTTP request's id is settled by the policy already; a WebSocket upgrade's is not.
    requestId: requestIdOf(req.headers['x-request-id']),
    host: via.host,
    forwardedProto: via.proto,
    clientAddress: via.address,
    signal: options.signal,
  };
}

/** A signal that aborts when the client of `res` goes away before the response is complete. */
export function clientGoneSignal(res: http.ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
