import type http from 'node:http';
import type { Duplex } from 'node:stream';

/** Where a WebSocket upgrade may go, and who takes it. */
export interface UpgradeRoute {
  /**
   * `/graphql` matches that path only; `:name` matches one segment and hands it over as a
   * parameter (`/fastapi-chat/ws/:user_id`); a trailing `/*` matches everything below.
   */
  path: string;
  take(req: http.IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string>): void;
}

/** The route `pathname` goes to, with its parameters; undefined when none matches. */
export function matchRoute<R extends Pick<UpgradeRoute, 'path'>>(routes: R[], pathname: string): { route: R; params: Record<string, string> } | undefined {
  const parts = pathname.split('/');
  for (const route of routes) {
    const pattern = route.path.split('/');
    const params: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < pattern.length && matched; i++) {
      const want = pattern[i];
      if (want === '*' && i === pattern.length - 1) return { route, params };
      const got = parts[i];
      if (got === undefined) matched = false;
      else if (want.startsWith(':')) {
        let value: string;
        try {
          value = decodeURIComponent(got);
        } catch {
          value = '';
        }
        if (value === '') matched = false;
        else params[want.slice(1)] = value;
      } else matched = want === got;
    }
    if (matched && parts.length === pattern.length) return { route, params };
  }
  return undefined;
}

/** Answers an upgrade no server takes with an HTTP status, so the client learns why. */
function refuse(socket: Duplex, status: number, reason: string, message: string) {
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * The one upgrade handler of the HTTP server: a route table decides which server takes a
 * socket (graphql-ws, Socket.IO, a raw WebSocket dialect). An upgrade to no route, or to
 * something other than WebSocket, is answered with a status rather than dropped.
 */
export function upgradeHandler(routes: UpgradeRoute[]) {
  return (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // A socket reset while it is being handed over must not reach the process as an error.
    socket.on('error', () => socket.destroy());
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      return refuse(socket, 400, 'Bad Request', 'Only WebSocket upgrades are served here');
    }
    const pathname = (req.url ?? '/').split('?')[0];
    const found = matchRoute(routes, pathname);
    if (!found) return refuse(socket, 404, 'Not Found', `No WebSocket endpoint at ${pathname}`);
    found.route.take(req, socket, head, found.params);
  };
}
