import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';

/** What uploads may be, decided from their first bytes, never from their name. */
const ALLOWED = new Set([
  'image/png', 'image/jpeg', 'image/gif', 'image/webp',
  'application/pdf', 'text/plain',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/x-cfb', 'application/zip',
  'audio/mpeg', 'audio/ogg', 'audio/wav', 'audio/x-wav', 'audio/aac', 'audio/x-m4a', 'audio/mp4', 'audio/webm', 'audio/opus',
  'video/mp4', 'video/webm', 'video/quicktime', 'video/ogg',
]);

/** Extensions whose type we know: a name that promises another type than the content is refused. */
const BY_EXTENSION: Record<string, string[]> = {
  png: ['image/png'], jpg: ['image/jpeg'], jpeg: ['image/jpeg'], gif: ['image/gif'], webp: ['image/webp'],
  pdf: ['application/pdf'], txt: ['text/plain'], mp3: ['audio/mpeg'], mp4: ['video/mp4', 'audio/mp4'],
  webm: ['video/webm', 'audio/webm'], wav: ['audio/wav', 'audio/x-wav'], ogg: ['audio/ogg', 'video/ogg', 'audio/opus'],
  docx: ['application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
  xlsx: ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
  pptx: ['application/vnd.openxmlformats-officedocument.presentationml.presentation'],
};

export interface Sniffed {
  mimeType: string;
  width: number | null;
  height: number | null;
}

/** The type of an upload from its first bytes, or a sentence saying why it is refused. */
export async function sniff(head: Buffer, filename: string): Promise<Sniffed | string> {
  const detected = await fileTypeFromBuffer(head);
  const mimeType = detected?.mime ?? (looksLikeText(head) ? 'text/plain' : 'application/octet-stream');
  if (!ALLOWED.has(mimeType)) return `files of type ${mimeType} are not accepted`;
  const extension = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
  const promised = extension ? BY_EXTENSION[extension] : undefined;
  if (promised && !promised.includes(mimeType)) return `the name says .${extension} but the content is ${mimeType}`;
  let width: number | null = null;
  let height: number | null = null;
  if (mimeType.startsWith('image/')) {
    try {
      ({ width, height } = imageSize(head) as { width: number; height: number });
    } catch {
      return 'the image could not be read';
    }
  }
  return { mimeType, width, height };
}

/** Valid UTF-8 without control bytes other than whitespace: plain text. */
function looksLikeText(head: Buffer): boolean {
  if (head.length === 0) return false;
  if (head.some((b) => b < 9 || (b > 13 && b < 32 && b !== 27))) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - 4));
    return true;
  } catch {
    return false;
  }
}
