import type http from 'node:http';
import type { Config } from '../config.ts';
import { forwarded } from '../http/policy.ts';
import { publicOrigin } from '../lib/client-address.ts';
import { sendJson } from './http.ts';

/** Where a dialect is served: its REST mount, and its Socket.IO namespace or WebSocket path. */
export interface DialectMount {
  name: string;
  rest: string;
  socketIo: string | null;
  webSocket: string | null;
}

/**
 * Where `/` sends people: GraphiQL, /health and the dialect mounts, with absolute URLs (the
 * origin the client used, or PUBLIC_URL) so that each can be opened as it is.
 */
function directory(origin: string, mounts: DialectMount[]) {
  const ws = origin.replace(/^http/, 'ws');
  return {
    name: 'Chat API',
    graphql: `${origin}/graphql`,
    graphiql: `${origin}/graphql`,
    subscriptions: { url: `${ws}/graphql`, protocol: 'graphql-transport-ws' },
    health: `${origin}/health`,
    metrics: `${origin}/metrics`,
    dialects: mounts.map((d) => ({
      name: d.name,
      rest: `${origin}${d.rest}`,
      socketIo: d.socketIo && `${origin}${d.socketIo}`,
      webSocket: d.webSocket && `${ws}${d.webSocket}`,
    })),
  };
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(links: ReturnType<typeof directory>): string {
  const a = (url: string, text = url) => `<a href="${escapeHtml(url)}">${escapeHtml(text)}</a>`;
  const dialects = links.dialects
    .map((d) => `<li><code>${escapeHtml(d.name)}</code>: REST under ${a(d.rest)}${d.socketIo ? `, Socket.IO namespace <code>${escapeHtml(d.socketIo)}</code>` : ''}${d.webSocket ? `, WebSocket <code>${escapeHtml(d.webSocket)}</code>` : ''}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${links.name}</title></head>
<body>
<h1>${links.name}</h1>
<p><strong>${a(links.graphiql, 'Open GraphiQL')}</strong> to explore the API: it opens on a first session (sign up, paste the token into the Headers tab, then a query and a live subscription), and its Docs pane describes every field.</p>
<ul>
<li>${a(links.graphql)}: GraphQL over HTTP (POST, or GET for queries), multipart uploads, and subscriptions over graphql-ws at <code>${escapeHtml(links.subscriptions.url)}</code></li>
<li>${a(links.health)}: whether the database and pub/sub answer</li>
<li>${a(links.metrics)}: live counts of sockets, subscriptions and topics</li>
</ul>
<h2>Compatibility dialects</h2>
<ul>
${dialects}
</ul>
</body>
</html>
`;
}

/**
 * `GET /`: a small page for a browser (it asks for text/html), JSON for anything else, so that
 * neither a person nor a script that tries the bare address meets a 404.
 */
export function serveHome(req: http.IncomingMessage, res: http.ServerResponse, config: Config, mounts: DialectMount[]): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(res, 405, { error: 'Method not allowed', allow: ['GET', 'HEAD'] }, { allow: 'GET, HEAD' });
  }
  const { host, proto } = forwarded(config, req.headers, req.socket.remoteAddress);
  const links = directory(publicOrigin(config, host, proto), mounts);
  if (!req.headers.accept?.includes('text/html')) return sendJson(res, 200, links, { vary: 'Accept' });
  const html = page(links);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), vary: 'Accept' });
  res.end(html); // Node sends no body in answer to HEAD
}

/**
 * The line `npm start` prints for a person: where GraphiQL is. An address that listens on every
 * interface (0.0.0.0, ::) is not one a browser should be sent to; localhost reaches it.
 */
export function whereToGo(listeningUrl: string): string {
  const url = new URL(listeningUrl);
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = 'localhost';
  return `GraphiQL: ${url.origin}/graphql`;
}
