import type http from 'node:http';
import type { TransportContext } from '../graphql/yoga.ts';

/** Writes a JSON response: the one way our own (non-Yoga) routes answer. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * What a Node request (an HTTP request or a WebSocket upgrade) tells the context factory:
 * credentials, request id, and the host the client used (for absolute links).
 */
export function transportContext(req: http.IncomingMessage, authorization: unknown = req.headers.authorization): TransportContext {
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return {
    authorization,
    requestId: header('x-request-id'),
    host: header('x-forwarded-host') ?? header('host'),
    forwardedProto: header('x-forwarded-proto'),
  };
}
