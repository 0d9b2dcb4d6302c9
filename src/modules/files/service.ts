import { randomUUID } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { FileUpload } from 'graphql-upload-minimal';
import type { Context, SignedInContext } from '../../schema/context.ts';
import { AppError, badInput, forbidden, notFound } from '../../lib/errors.ts';
import type { FileSnapshot } from '../../lib/events.ts';
import { requireMember } from '../conversations/access.ts';
import { fileSnapshot } from './snapshot.ts';
import { sniff } from './types.ts';
import { announceSessionChange } from '../viewer/sessions.ts';
import { recordEvent } from '../outbox/outbox.ts';
import { userEvent } from '../users/snapshot.ts';

/** Enough of the start of a file to tell its type and an image's size. */
const HEAD_BYTES = 64 * 1024;

/**
 * Streams an upload to storage, keeping its first bytes to decide the type, and records it as
 * the viewer's file. Nothing stays stored when the upload is too large (PAYLOAD_TOO_LARGE) or
 * of a refused type.
 */
async function store(ctx: SignedInContext, upload: Promise<FileUpload>, options: { imagesOnly: boolean; conversationId: number | null }) {
  const uploaderId = ctx.viewer.id;
  const { filename, createReadStream } = await upload;
  const key = randomUUID();
  const limit = ctx.config.MAX_UPLOAD_BYTES;
  const tooLarge = new AppError('PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`, { limit });
  const chunks: Buffer[] = [];
  let kept = 0;
  let size = 0;
  // Counts the bytes and keeps the first ones as they pass on to storage.
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > limit) return done(tooLarge);
      if (kept < HEAD_BYTES) {
        chunks.push(chunk);
        kept += chunk.length;
      }
      done(null, chunk);
    },
  });
  const source: Readable = createReadStream();
  // The multipart parser stops feeding a file at the limit (and says so with 'limit').
  source.once('limit', () => counter.destroy(tooLarge));
  // Errors of either stream end `counter`, and so reach storage.write, which cleans up.
  await ctx.storage.write(key, pipeline(source, counter, () => {}));
  const sniffed = await sniff(Buffer.concat(chunks).subarray(0, HEAD_BYTES), filename);
  if (typeof sniffed === 'string' || (options.imagesOnly && !sniffed.mimeType.startsWith('image/'))) {
    await ctx.storage.remove(key);
    throw badInput({ file: typeof sniffed === 'string' ? sniffed : 'an avatar must be an image' });
  }
  try {
    return await ctx.db.file.create({
      data: {
        storageKey: key,
        name: filename.slice(0, 255) || 'file',
        size,
        ...sniffed,
        uploaderId,
        conversationId: options.conversationId,
      },
    });
  } catch (err) {
    // No record, no bytes: an upload that failed here leaves nothing stored.
    await ctx.storage.remove(key).catch(() => {});
    throw err;
  }
}

export async function uploadFile(ctx: SignedInContext, upload: Promise<FileUpload>, conversationId?: string | null): Promise<FileSnapshot> {
  const conversation = conversationId ? (await requireMember(ctx, conversationId)).conversation : null;
  return fileSnapshot(await store(ctx, upload, { imagesOnly: false, conversationId: conversation?.id ?? null }));
}

/** Stores an image and makes it the viewer's avatar, served at a stable public address. */
export async function uploadAvatar(ctx: SignedInContext, upload: Promise<FileUpload>) {
  const file = await store(ctx, upload, { imagesOnly: true, conversationId: null });
  const user = await ctx.db.$transaction(async (tx) => {
    const changed = await tx.user.update({ where: { id: file.uploaderId! }, data: { avatarUrl: `${ctx.origin}/avatars/${file.id}` } });
    await recordEvent(tx, userEvent('user.updated', changed));
    return changed;
  });
  ctx.outbox.kick();
  await announceSessionChange(ctx, { type: 'userChanged', userId: user.id });
  return user;
}

export async function deleteFile(ctx: SignedInContext, id: string): Promise<string> {
  const me = ctx.viewer.id;
  const fileId = Number(id);
  const file = Number.isSafeInteger(fileId) ? await ctx.db.file.findUnique({ where: { id: fileId } }) : null;
  if (!file || file.deletedAt) throw notFound('File');
  if (file.uploaderId !== me) throw forbidden('Only the uploader can delete a file');
  await ctx.db.file.update({ where: { id: file.id }, data: { deletedAt: new Date() } });
  if (file.storageKey) await ctx.storage.remove(file.storageKey);
  return String(file.id);
}

/**
 * A link to a file that works without headers (an <img src>) until it expires. Only those
 * who can see the file get one: every path to a File in the schema is already authorised
 * (the uploader's own upload, or an attachment of a conversation the viewer may read).
 */
export function signedFileUrl(ctx: Context, file: Pick<FileSnapshot, 'id' | 'name' | 'externalUrl'>, download: boolean): string {
  if (file.externalUrl) return file.externalUrl;
  const expires = Math.floor(Date.now() / 1000) + ctx.config.FILE_URL_TTL;
  const disposition = download ? 'attachment' : 'inline';
  const signature = ctx.tokens.signLink(`${file.id}.${expires}.${disposition}`);
  return `${ctx.origin}/files/${file.id}/${encodeURIComponent(file.name)}?expires=${expires}&disposition=${disposition}&signature=${signature}`;
}
