import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { GRAPHIQL_DIST, GRAPHIQL_VERSION, graphiqlAsset } from '../graphql/graphiql-page.ts';
import { sendJson } from './http.ts';

/** Their URLs change with the package's version, so they never change under a URL. */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';

/**
 * Each file compressed once per process, on first demand, and kept (2.4 MB for all five): the
 * UMD script is 5.3 MB as it is and 1.4 MB compressed, as unpkg used to send it.
 */
const compressed = new Map<string, Promise<Buffer>>();
const gzipAsync = promisify(gzip);

function gzipped(file: string): Promise<Buffer> {
  let body = compressed.get(file);
  if (!body) {
    body = readFile(file).then((raw) => gzipAsync(raw));
    // A failure is not remembered: the next request tries again.
    body.catch(() => compressed.delete(file));
    compressed.set(file, body);
  }
  return body;
}

/**
 * Whether Accept-Encoding allows gzip: named with a quality above 0, or not named and allowed
 * by `*`.
 */
function acceptsGzip(header: string | undefined): boolean {
  const quality = new Map<string, number>();
  for (const part of (header ?? '').toLowerCase().split(',')) {
    const [coding = '', ...params] = part.split(';').map((p) => p.trim());
    const q = params.find((p) => p.startsWith('q='));
    quality.set(coding, q === undefined ? 1 : Number(q.slice(2)) || 0);
  }
  return (quality.get('gzip') ?? quality.get('*') ?? 0) > 0;
}

const matches = (ifNoneMatch: string | undefined, etag: string) =>
  ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => ['*', etag, `W/${etag}`].includes(tag.trim()));

/**
 * GET/HEAD under /graphql/graphiql/: the files GraphiQL's page loads (graphql/graphiql-page.ts),
 * read from the installed package. Only the listed files of the installed version are served,
 * looked up by name, so no path reaches any other file; anything else is a 404.
 */
export async function serveGraphiQLAsset(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(res, 405, { error: 'Method not allowed', allow: ['GET', 'HEAD'] }, { allow: 'GET, HEAD' });
  }
  const asset = graphiqlAsset(pathname);
  if (!asset) return sendJson(res, 404, { error: 'Not found', path: pathname });
  const file = path.join(GRAPHIQL_DIST, asset.name);
  const gz = acceptsGzip(req.headers['accept-encoding']);
  // One ETag per representation, as the compressed and plain bodies differ.
  const etag = `"${GRAPHIQL_VERSION}${gz ? '-gzip' : ''}"`;
  // Added to, not replaced: the answer may vary by Origin too (CORS).
  const vary = res.getHeader('vary');
  res.setHeader('vary', vary ? `${String(vary)}, Accept-Encoding` : 'Accept-Encoding');
  const headers: http.OutgoingHttpHeaders = {
    'content-type': asset.contentType,
    'cache-control': CACHE_CONTROL,
    etag,
    'x-content-type-options': 'nosniff',
  };
  if (matches(req.headers['if-none-match'], etag)) {
    res.writeHead(304, { 'cache-control': CACHE_CONTROL, etag });
    return void res.end();
  }
  if (gz) {
    const body = await gzipped(file);
    res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': body.length });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  const { size } = await stat(file);
  res.writeHead(200, { ...headers, 'content-length': size });
  if (req.method === 'HEAD') return void res.end();
  // A client that leaves mid-file ends the stream; there is nothing to answer then.
  await pipeline(createReadStream(file), res).catch(() => res.destroy());
}
