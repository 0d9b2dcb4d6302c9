import { z } from 'zod';
import type { Prisma } from '../../generated/prisma/client.ts';
import type { Context, SignedInContext } from '../../schema/context.ts';
import { forbidden, notFound } from '../../lib/errors.ts';
import type { FileSnapshot } from '../../lib/events.ts';
import { parseInput } from '../../lib/validation.ts';
import { parseId, requireReadable } from '../conversations/access.ts';
import { fileSnapshot } from './snapshot.ts';

/**
 * Files that live elsewhere (a CDN, S3 the client uploaded to) and are only recorded here,
 * attached to a message or a conversation. The limits are the flask-chat API's, the one
 * surface that records files this way.
 */
export const LINKED_FILE_MAX_BYTES = 5 * 1024 * 1024;
const LINKED_TYPES: Record<string, string> = {
  pdf: 'application/pdf',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  webp: 'image/webp',
};

const linkRules = z
  .object({
    name: z.string().trim().min(1, 'is required').max(255, 'must be at most 255 characters'),
    url: z.string().trim().url('must be a URL').max(2048).refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL'),
    size: z.number().int().min(0, 'must not be negative').max(LINKED_FILE_MAX_BYTES, `must be at most ${LINKED_FILE_MAX_BYTES} bytes (5 MB)`),
    messageId: z.union([z.string(), z.number()]).nullish(),
    conversationId: z.union([z.string(), z.number()]).nullish(),
  })
  .superRefine((v, issue) => {
    if ((v.messageId == null) === (v.conversationId == null)) {
      issue.addIssue({ code: 'custom', path: ['messageId'], message: 'give exactly one of messageId and conversationId' });
    }
    if (!LINKED_TYPES[extensionOf(v.name)]) {
      issue.addIssue({ code: 'custom', path: ['name'], message: `must be one of: ${Object.keys(LINKED_TYPES).join(', ')}` });
    }
  });

function extensionOf(name: string) {
  return /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? '';
}

/** The conversation a message is in, if the viewer may read it (NOT_FOUND otherwise). */
async function readableMessage(ctx: Context, messageId: string | number) {
  const id = parseId(messageId, 'Message');
  const message = await ctx.db.message.findUnique({ where: { id }, select: { id: true, conversationId: true, deletedAt: true } });
  if (!message || message.deletedAt) throw notFound('Message');
  await requireReadable(ctx, message.conversationId);
  return message;
}

export async function linkFile(ctx: SignedInContext, input: unknown): Promise<FileSnapshot> {
  const uploaderId = ctx.viewer.id;
  const data = parseInput(linkRules, input);
  const message = data.messageId != null ? await readableMessage(ctx, data.messageId) : null;
  const conversationId = message?.conversationId ?? (await requireReadable(ctx, data.conversationId!)).conversation.id;
  const file = await ctx.db.file.create({
    data: {
      name: data.name,
      externalUrl: data.url,
      size: data.size,
      mimeType: LINKED_TYPES[extensionOf(data.name)],
      uploaderId,
      conversationId,
      messageId: message?.id ?? null,
    },
  });
  return fileSnapshot(file);
}

/**
 * One file by id, for its uploader or an admin. Others see files through what they can read
 * (a message's attachments, `files(conversationId)`), never by guessing ids.
 */
export async function getFile(ctx: SignedInContext, id: string): Promise<FileSnapshot> {
  const me = ctx.viewer.id;
  const file = await ctx.db.file.findUnique({ where: { id: parseId(id, 'File') } });
  if (!file || file.deletedAt) throw notFound('File');
  if (file.uploaderId !== me && ctx.viewer.role !== 'ADMIN') throw forbidden('Only the uploader can see this file');
  return fileSnapshot(file);
}

/** The viewer's own files, or those of a message or conversation the viewer can read. */
export async function listFiles(ctx: SignedInContext, filter: { messageId?: string | null; conversationId?: string | null }) {
  const me = ctx.viewer.id;
  const where: Prisma.FileWhereInput = { deletedAt: null };
  if (filter.messageId != null) where.messageId = (await readableMessage(ctx, filter.messageId)).id;
  else if (filter.conversationId != null) where.conversationId = (await requireReadable(ctx, filter.conversationId)).conversation.id;
  else where.uploaderId = me;
  const files = await ctx.db.file.findMany({ where, orderBy: { id: 'asc' }, take: 500 });
  return files.map(fileSnapshot);
}
