import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { GqlResult } from './clients.ts';

/** A file as a browser would pick it. */
export interface LocalFile {
  name: string;
  bytes: Buffer;
  type?: string;
}

/**
 * One operation with one file, sent as the GraphQL multipart request spec says (the form
 * Apollo's upload link and `curl -F` produce): operations, map, then the file part.
 */
export async function upload<TResult, TVariables extends { file: unknown }>(
  server: { url: string },
  document: TypedDocumentNode<TResult, TVariables>,
  variables: Omit<TVariables, 'file'>,
  file: LocalFile,
  token?: string,
): Promise<{ status: number; body: GqlResult<TResult> }> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: print(document), variables: { ...variables, file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'application/octet-stream' }), file.name);
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    body: form,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, body: (await res.json()) as GqlResult<TResult> };
}

/** A 1×1 PNG. */
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

/** A valid WAV file of `samples` bytes of silence-ish PCM, for Range requests. */
export function wav(samples: number): Buffer {
  const data = Buffer.alloc(samples, 0).map((_, i) => i % 251);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples, 40);
  return Buffer.concat([header, data]);
}
