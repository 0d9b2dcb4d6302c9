import type http from 'node:http';
import type { Services } from '../services/services.ts';
import { sendJson } from './http.ts';

/**
 * GET /files/:id/:name?expires&disposition&signature — a signed link from `File.url`, so it
 * works in an <img src> with no headers; it stops working when it expires, when any part of
 * it is altered, or when the file or its message is deleted. Supports Range for audio/video.
 * GET /avatars/:id — avatars are public, as the seeds' profile pictures are.
 */
export async function serveFile(services: Services, req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
  const [, kind, rawId] = url.pathname.split('/');
  const id = Number(rawId);
  if (!Number.isSafeInteger(id)) return refuse(res, 404, 'File not found');
  let disposition: 'inline' | 'attachment' = 'inline';
  if (kind === 'files') {
    const expires = Number(url.searchParams.get('expires'));
    disposition = url.searchParams.get('disposition') === 'attachment' ? 'attachment' : 'inline';
    const signature = url.searchParams.get('signature') ?? '';
    if (!services.tokens.verifyLink(`${id}.${url.searchParams.get('expires')}.${url.searchParams.get('disposition')}`, signature)) {
      return refuse(res, 403, 'Invalid link');
    }
    if (!(expires * 1000 > Date.now())) return refuse(res, 403, 'Link expired');
  }
  const file = await services.db.file.findUnique({ where: { id }, include: { message: { select: { deletedAt: true } } } });
  if (!file || file.deletedAt || file.message?.deletedAt || !file.storageKey) return refuse(res, 404, 'File not found');
  if (kind === 'avatars' && !file.mimeType.startsWith('image/')) return refuse(res, 404, 'File not found');

  const headers: http.OutgoingHttpHeaders = {
    'content-type': file.mimeType === 'text/plain' ? 'text/plain; charset=utf-8' : file.mimeType,
    'accept-ranges': 'bytes',
    'content-disposition': `${disposition}; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    'cache-control': kind === 'avatars' ? 'public, max-age=3600' : 'private, max-age=300',
  };
  const range = parseRange(req.headers.range, file.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${file.size}` });
    return void res.end();
  }
  if (range) {
    res.writeHead(206, { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${file.size}`, 'content-length': range.end - range.start + 1 });
  } else {
    res.writeHead(200, { ...headers, 'content-length': file.size });
  }
  if (req.method === 'HEAD') return void res.end();
  const body = services.storage.read(file.storageKey, range ?? undefined);
  body.on('error', () => res.destroy());
  body.pipe(res);
}

/** One `bytes=` range (the form players use); several ranges are answered with the whole file. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return null;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

function refuse(res: http.ServerResponse, status: number, error: string) {
  sendJson(res, status, { error });
}
