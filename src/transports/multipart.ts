import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { Upload } from 'graphql-upload-minimal';

/** A file of a multipart form, kept in a temporary file until the request is done. */
export interface FormFile {
  /** The form field that carried it. */
  field: string;
  /** The name the client gave, made safe to show and store (see `cleanFilename`). */
  filename: string;
  mimetype: string;
  encoding: string;
  size: number;
  /** The file as a GraphQL `Upload` (the multipart request spec's scalar), read from disk. */
  upload(): Upload;
}

export interface Form {
  fields: Record<string, string>;
  files: FormFile[];
  /** Removes the temporary files; called once the request is answered, whatever happened. */
  discard(): Promise<void>;
}

export interface FormLimits {
  /** Where the temporary files go (DATA_DIR/tmp, on the same disk as the uploads). */
  tmpDir: string;
  /** Largest file, bytes; 0 takes no files (they are skipped unread). */
  maxFileBytes: number;
  maxFiles: number;
  maxFields: number;
  /** Largest text field, bytes. */
  maxFieldBytes: number;
  /** Which file fields to keep, given the fields read so far; the rest are skipped unread. */
  wantFile?(field: string, fields: Record<string, string>): boolean;
}

/** Where forms being read keep their files: under DATA_DIR, on the disk uploads go to. */
export function formTmpDir(config: { DATA_DIR: string }): string {
  return path.join(config.DATA_DIR, 'tmp');
}

/** A form the server cannot take: answered with `status` and `code`, never a 5xx. */
export class MultipartError extends Error {
  constructor(
    readonly code: 'BAD_USER_INPUT' | 'PAYLOAD_TOO_LARGE',
    message: string,
    readonly status = code === 'PAYLOAD_TOO_LARGE' ? 413 : 400,
  ) {
    super(message);
  }
}

/**
 * A client's file name as we keep it: the last path segment, without control characters
 * (PostgreSQL cannot store NUL) and lone surrogates, at most 255 characters.
 */
export function cleanFilename(name: string): string {
  const base = name.replaceAll('\\', '/').split('/').at(-1) ?? '';
  // eslint-disable-next-line no-control-regex
  return base.toWellFormed().replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255);
}

/**
 * Reads a multipart/form-data body: text fields by name, files streamed to a temporary
 * directory (never held in memory whole), each cut off and refused past `maxFileBytes`.
 *
 * Whatever the body holds (a truncated form, a bad boundary, a name with a NUL byte, a client
 * that leaves halfway), this settles once: it resolves with the form, or rejects with a
 * MultipartError after every file write has ended and the directory is gone. busboy can report
 * more than one error for one body, and each is listened for: an unheard one would end the
 * process.
 */
export async function readForm(req: http.IncomingMessage, limits: FormLimits): Promise<Form> {
  await mkdir(limits.tmpDir, { recursive: true });
  const dir = await mkdtemp(path.join(limits.tmpDir, 'form-'));
  const discard = () => rm(dir, { recursive: true, force: true });
  const fields: Record<string, string> = Object.create(null);
  const files: FormFile[] = [];
  const writes: Promise<void>[] = [];
  /** File parts still streaming, ended at once if the form fails. */
  const open = new Set<NodeJS.ReadableStream & { destroy(err?: Error): void }>();
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let parser!: busboy.Busboy;
      const fail = (err: MultipartError) => {
        if (settled) return;
        settled = true;
        req.unpipe(parser);
        parser.destroy();
        for (const stream of open) stream.destroy(err);
        // Read (and drop) the rest of the body, so the answer can be written on this connection.
        req.resume();
        reject(err);
      };
      try {
        parser = busboy({
          headers: req.headers,
          defParamCharset: 'utf8',
          limits: {
            fileSize: limits.maxFileBytes,
            // Files a route does not take are skipped unread below, not refused.
            files: limits.maxFiles,
            fields: limits.maxFields,
            fieldSize: limits.maxFieldBytes,
            parts: limits.maxFields + limits.maxFiles + 10,
          },
        });
      } catch {
        return reject(new MultipartError('BAD_USER_INPUT', 'The body is not multipart/form-data with a boundary'));
      }
      parser.on('field', (name, value, info) => {
        if (info.valueTruncated) fail(new MultipartError('PAYLOAD_TOO_LARGE', `Field ${name} is larger than ${limits.maxFieldBytes} bytes`));
        else fields[name] = value;
      });
      parser.on('file', (name, stream, info) => {
        if (settled || limits.maxFileBytes === 0 || (limits.wantFile && !limits.wantFile(name, fields))) {
          // Skipped unread; a form cut off inside this part still ends the stream with an error.
          stream.on('error', () => {});
          stream.resume();
          return;
        }
        const target = path.join(dir, String(writes.length));
        const filename = cleanFilename(info.filename ?? '');
        let size = 0;
        let truncated = false;
        stream.on('data', (chunk: Buffer) => (size += chunk.length));
        stream.once('limit', () => (truncated = true));
        open.add(stream);
        const write = pipeline(stream, createWriteStream(target)).finally(() => open.delete(stream)).then(() => {
          if (truncated) throw new MultipartError('PAYLOAD_TOO_LARGE', `Files may be at most ${limits.maxFileBytes} bytes`);
          files.push({
            field: name,
            filename,
            mimetype: info.mimeType,
            encoding: info.encoding,
            size,
            upload() {
              // `resolve` exists at run time; the package's types leave it out.
              const upload = new Upload() as Upload & { resolve(file: unknown): void };
              const file = { filename, mimetype: info.mimeType, encoding: info.encoding, fieldName: name, createReadStream: () => createReadStream(target) };
              upload.resolve(file);
              return upload;
            },
          });
        });
        // Awaited below with the others; this only keeps an early failure from counting as unhandled.
        write.catch(() => {});
        writes.push(write);
      });
      parser.on('filesLimit', () => fail(new MultipartError('BAD_USER_INPUT', `At most ${limits.maxFiles} files per request`)));
      parser.on('fieldsLimit', () => fail(new MultipartError('BAD_USER_INPUT', `At most ${limits.maxFields} fields per request`)));
      parser.on('partsLimit', () => fail(new MultipartError('BAD_USER_INPUT', 'Too many parts in this form')));
      parser.on('error', (err: Error) => fail(new MultipartError('BAD_USER_INPUT', `Malformed multipart body: ${err.message}`)));
      parser.on('close', () => {
        void Promise.allSettled(writes).then((results) => {
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (!failed) {
            settled = true;
            return resolve();
          }
          fail(failed.reason instanceof MultipartError ? failed.reason : new MultipartError('BAD_USER_INPUT', 'A file of this form could not be read'));
        });
      });
      const left = () => fail(new MultipartError('BAD_USER_INPUT', 'The request ended before its body was complete'));
      req.once('error', () => fail(new MultipartError('BAD_USER_INPUT', 'The request failed while its body was read')));
      // Closed before all of its body was handed on: the rest will never come.
      req.once('close', () => {
        if (!req.readableEnded) left();
      });
      // A client may have gone while we were still deciding (signing in, making the directory):
      // its 'close' has been and gone, and its body will never end.
      if (req.destroyed && !req.readableEnded) return left();
      req.pipe(parser);
    });
  } catch (err) {
    await Promise.allSettled(writes);
    await discard();
    throw err;
  }
  return { fields, files, discard };
}
