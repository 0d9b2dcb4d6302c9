import { z } from 'zod';
import type { File, Message, MessageKind } from '../../generated/prisma/client.ts';
import type { Context, SignedInContext } from '../../schema/context.ts';
import { badInput, forbidden, notFound } from '../../lib/errors.ts';
import { topics, type BusEvent, type MessageSnapshot } from '../../lib/events.ts';
import { parseDatabaseId } from '../../lib/ids.ts';
import { isUniqueViolation, parseInput } from '../../lib/validation.ts';
import { parseId, requireMember, requireReadable } from '../conversations/access.ts';
import { announceUpdate, ensureDirectConversation, memberIds } from '../conversations/service.ts';
import { messageInclude, messageSnapshot, type MessageRecord } from './snapshot.ts';
import { userSnapshot } from '../users/snapshot.ts';
import type { NewMessage, StoredMessage } from './writer.ts';
import { recordEvent, type NewOutboxEvent } from '../outbox/outbox.ts';

export const MAX_CONTENT = 10_000;
const MAX_ATTACHMENTS = 10;

/** PostgreSQL text cannot hold a NUL character; refused here rather than by the database. */
const noNul = (rule: z.ZodString) => rule.refine((v) => !v.includes('\u0000'), 'must not contain NUL characters');
const contentRule = noNul(z.string().trim().max(MAX_CONTENT, `must be at most ${MAX_CONTENT} characters`));

const sendRules = z
  .object({
    conversationId: z.union([z.string(), z.number()]).nullish(),
    recipientId: z.union([z.string(), z.number()]).nullish(),
    content: contentRule.nullish(),
    kind: z.enum(['TEXT', 'IMAGE', 'FILE', 'AUDIO', 'VIDEO'], 'SYSTEM messages are written by the server').nullish(),
    attachmentIds: z.array(z.union([z.string(), z.number()])).max(MAX_ATTACHMENTS, `must list at most ${MAX_ATTACHMENTS} files`).nullish(),
    replyToId: z.union([z.string(), z.number()]).nullish(),
    clientId: noNul(z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters')).nullish(),
  })
  .superRefine((v, ctx) => {
    if ((v.conversationId == null) === (v.recipientId == null)) {
      ctx.addIssue({ code: 'custom', path: ['conversationId'], message: 'give exactly one of conversationId and recipientId' });
    }
    if (!v.content && !v.attachmentIds?.length) {
      ctx.addIssue({ code: 'custom', path: ['content'], message: 'must not be empty' });
    }
  });

/** The message kind its files imply when the sender did not say. */
function kindFromFiles(files: File[]): MessageKind {
  const families = new Set(files.map((f) => f.mimeType.split('/')[0]));
  if (families.size === 1) {
    const [family] = families;
    if (family === 'image') return 'IMAGE';
    if (family === 'audio') return 'AUDIO';
    if (family === 'video') return 'VIDEO';
  }
  return 'FILE';
}

/**
 * Sends a message. Messages of one conversation are numbered under the conversation's row
 * lock, so they commit in order with no gap in `seq` (MessageWriter); events go out after the
 * commit. The same sender sending the same clientId again gets the first message back (a
 * unique index decides, not a cache), and no second event.
 */
export async function sendMessage(ctx: SignedInContext, input: unknown): Promise<MessageSnapshot> {
  const me = ctx.viewer.id;
  const data = parseInput(sendRules, input);
  if (data.clientId) {
    const earlier = await findByClientId(ctx, me, data.clientId);
    if (earlier) return publishAgain(ctx, earlier);
  }
  const target = data.conversationId ?? (await ensureDirectConversation(ctx, data.recipientId!)).id;
  const conversationId = parseId(target, 'Conversation');
  // Most sends are plain text by a member: the writer checks membership as it inserts, which
  // saves a round trip. Replies and attachments are checked against the conversation, so for
  // them (and whenever the writer finds no membership) access.ts decides first.
  const plain = data.replyToId == null && !data.attachmentIds?.length;
  if (!plain) await requireMember(ctx, conversationId);
  const replyTo = await replyTarget(ctx, data.replyToId, conversationId);
  const files = await attachableFiles(ctx, data.attachmentIds ?? [], conversationId);
  const row: NewMessage = {
    conversationId,
    senderId: me,
    kind: data.kind ?? (files.length ? kindFromFiles(files) : 'TEXT'),
    content: data.content ?? '',
    replyToId: replyTo?.id ?? null,
    clientId: data.clientId ?? null,
    fileIds: files.map((f) => f.id),
  };

  let stored: StoredMessage | undefined;
  try {
    stored = await ctx.messageWriter.write(row);
    if (!stored) {
      await requireMember(ctx, conversationId); // NOT_FOUND, FORBIDDEN, or joins a public room
      stored = await ctx.messageWriter.write(row);
    }
  } catch (err) {
    // The same clientId sent twice at once: the first insert won; answer with its message.
    if (data.clientId && isUniqueViolation(err)) {
      const earlier = await findByClientId(ctx, me, data.clientId);
      if (earlier) return earlier;
    }
    throw err;
  }
  if (!stored) throw forbidden('You are not a participant of this conversation');
  const { memberIds: members, ...columns } = stored;
  // The spread last, as in messageSnapshot.
  const record: MessageRecord = {
    sender: ctx.viewer.user,
    attachments: files.map((f) => ({ ...f, messageId: stored.id, conversationId })),
    replyTo,
    ...columns,
  };
  const message = messageSnapshot(record);
  ctx.outbox.kick();
  await publishAdded(ctx, message, members);
  if (message.sender) await ctx.typing.stopIfTyping(conversationId, message.sender);
  return message;
}

/**
 * Announces a new message: on its conversation's topic, and on each member's own topic, where
 * it also stands for the conversation's update (last message, unread count): userStream
 * announces both. `members` is null for a public room.
 */
async function publishAdded(ctx: Context, message: MessageSnapshot, members: number[] | null): Promise<void> {
  const event: BusEvent = { type: 'messageAdded', conversationId: message.conversationId, message };
  await ctx.bus.publish([topics.conversation(message.conversationId), ...(members ?? []).map(topics.user)], event);
}

/** How long after a message is stored a retry of its send announces it again. */
const PUBLISH_AGAIN_WITHIN_MS = 10 * 60_000;

/**
 * A retry of a send already stored. The first attempt may have failed between its commit and
 * its publish (the connection lost, the instance stopped), its client seeing an error: then
 * nobody live has heard of the message, so it is announced again. Streams drop what they had
 * already (conversation streams by `seq`, user streams by id). A retry comes within moments;
 * one that comes much later only gets the message back.
 */
async function publishAgain(ctx: Context, message: MessageSnapshot): Promise<MessageSnapshot> {
  if (Date.now() - Date.parse(message.createdAt) > PUBLISH_AGAIN_WITHIN_MS || message.deletedAt) return message;
  const conversation = await ctx.db.conversation.findUnique({ where: { id: message.conversationId }, select: { kind: true } });
  const members = conversation?.kind === 'PUBLIC' ? null : await memberIds(ctx, message.conversationId);
  await publishAdded(ctx, message, members);
  return message;
}

/** The outbox event of a message changed or removed (a new one's is written by MessageWriter). */
function messageEvent(type: 'message.updated' | 'message.deleted', m: Message & { deletedAt?: Date | null }): NewOutboxEvent {
  return {
    type,
    topic: `conversation:${m.conversationId}`,
    payload: {
      id: m.id,
      conversationId: m.conversationId,
      seq: m.seq,
      senderId: m.senderId,
      kind: m.kind,
      content: m.content,
      createdAt: m.createdAt.toISOString(),
      editedAt: m.editedAt?.toISOString() ?? null,
      deletedAt: m.deletedAt?.toISOString() ?? null,
    },
  };
}

/** The message replied to: it must exist, be live, and belong to the same conversation. */
async function replyTarget(ctx: Context, replyToId: string | number | null | undefined, conversationId: number) {
  if (replyToId == null) return null;
  const id = Number(replyToId);
  const original = Number.isSafeInteger(id) ? await ctx.db.message.findUnique({ where: { id }, include: { sender: true } }) : null;
  if (!original || original.deletedAt) throw badInput({ replyToId: 'no such message' });
  if (original.conversationId !== conversationId) throw badInput({ replyToId: 'must be a message of the same conversation' });
  return original;
}

/** The sender's earlier message with this clientId. Most sends have none: that check is one cheap statement. */
async function findByClientId(ctx: Context, senderId: number, clientId: string): Promise<MessageSnapshot | null> {
  const { rowCount } = await ctx.sql.query({
    name: 'message-by-client-id',
    text: 'SELECT 1 FROM "Message" WHERE "senderId" = $1 AND "clientId" = $2',
    values: [senderId, clientId],
  });
  if (!rowCount) return null;
  const found = await ctx.db.message.findUnique({
    where: { senderId_clientId: { senderId, clientId } },
    include: messageInclude,
  });
  return found ? messageSnapshot(found) : null;
}

/** Files the sender uploaded, not yet attached, and not uploaded to another conversation. */
async function attachableFiles(ctx: SignedInContext, ids: Array<string | number>, conversationId: number): Promise<File[]> {
  if (ids.length === 0) return [];
  const wanted = [...new Set(ids.map(Number))];
  const files = wanted.every(Number.isSafeInteger)
    ? await ctx.db.file.findMany({ where: { id: { in: wanted }, deletedAt: null } })
    : [];
  for (const id of wanted) {
    const file = files.find((f) => f.id === id);
    if (!file || file.uploaderId !== ctx.viewer.id) throw badInput({ attachmentIds: `file ${id} is not one of your uploads` });
    if (file.messageId !== null) throw badInput({ attachmentIds: `file ${id} is already attached to a message` });
    if (file.conversationId !== null && file.conversationId !== conversationId) {
      throw badInput({ attachmentIds: `file ${id} was uploaded to another conversation` });
    }
  }
  return files;
}

async function ownMessage(ctx: SignedInContext, id: string | number, allowAdmin: boolean) {
  const me = ctx.viewer.id;
  const messageId = parseId(id, 'Message');
  const message = await ctx.db.message.findUnique({ where: { id: messageId }, include: { conversation: true } });
  if (!message || message.deletedAt) throw notFound('Message');
  const isAdmin = allowAdmin && ctx.viewer.role === 'ADMIN';
  if (!isAdmin) await requireReadable(ctx, message.conversationId);
  if (message.senderId !== me && !isAdmin) throw forbidden('Only the sender can change this message');
  return message;
}

export async function editMessage(ctx: SignedInContext, id: string, content: string): Promise<MessageSnapshot> {
  const message = await ownMessage(ctx, id, false);
  const text = parseInput(z.object({ content: contentRule }), { content }).content;
  const hasFiles = (await ctx.db.file.count({ where: { messageId: message.id, deletedAt: null } })) > 0;
  if (!text && !hasFiles) throw badInput({ content: 'must not be empty' });
  const editedAt = new Date();
  await ctx.db.$transaction([
    ctx.db.message.update({ where: { id: message.id }, data: { content: text, editedAt } }),
    recordEvent(ctx.db, messageEvent('message.updated', { ...message, content: text, editedAt })),
  ]);
  ctx.outbox.kick();
  // Read after the write rather than with it: Prisma runs a write with an include in a
  // transaction (one connection) and reads the include's relations at once, two statements on
  // that connection together, which pg@9 will refuse (pg warns of it now).
  const record = await ctx.db.message.findUniqueOrThrow({ where: { id: message.id }, include: messageInclude });
  const snapshot = messageSnapshot(record);
  await ctx.bus.publish(topics.conversation(message.conversationId), {
    type: 'messageEdited',
    conversationId: message.conversationId,
    message: snapshot,
  });
  if (message.conversation.lastMessageId === message.id && message.conversation.kind !== 'PUBLIC') {
    await announceUpdate(ctx, message.conversationId, await memberIds(ctx, message.conversationId));
  }
  return snapshot;
}

/** Removes a message from history (sender or site admin); the others are told. */
export async function deleteMessage(ctx: SignedInContext, id: string): Promise<number> {
  const message = await ownMessage(ctx, id, true);
  await ctx.db.$transaction(async (tx) => {
    const deletedAt = new Date();
    await tx.message.update({ where: { id: message.id }, data: { deletedAt, content: '' } });
    await recordEvent(tx, messageEvent('message.deleted', { ...message, content: '', deletedAt }));
    if (message.conversation.lastMessageId === message.id) {
      const previous = await tx.message.findFirst({
        where: { conversationId: message.conversationId, deletedAt: null },
        orderBy: { id: 'desc' },
        select: { id: true },
      });
      await tx.conversation.update({ where: { id: message.conversationId }, data: { lastMessageId: previous?.id ?? null } });
    }
  });
  ctx.outbox.kick();
  await ctx.bus.publish(topics.conversation(message.conversationId), {
    type: 'messageDeleted',
    conversationId: message.conversationId,
    messageId: message.id,
  });
  if (message.conversation.kind !== 'PUBLIC') {
    await announceUpdate(ctx, message.conversationId, await memberIds(ctx, message.conversationId));
  }
  return message.id;
}

/** One page of history, in id order, for `resolveCursorConnection`. */
export async function messagePage(
  ctx: Context,
  conversationId: number,
  page: { before?: string; after?: string; limit: number; inverted: boolean },
): Promise<MessageSnapshot[]> {
  const cursor = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    // "0" reads from the start: a client that has seen nothing asks for what is after 0.
    const n = value === '0' ? 0 : parseDatabaseId(value);
    if (n === null) throw badInput({ [name]: 'must be a message cursor (a message id)' });
    return n;
  };
  const after = cursor(page.after, 'after');
  const before = cursor(page.before, 'before');
  const rows = await ctx.db.message.findMany({
    where: {
      conversationId,
      deletedAt: null,
      id: { ...(after !== undefined ? { gt: after } : {}), ...(before !== undefined ? { lt: before } : {}) },
    },
    orderBy: { id: page.inverted ? 'desc' : 'asc' },
    take: page.limit,
    include: messageInclude,
  });
  const me = ctx.viewer?.id;
  // The connection asks for one row more than it returns, to know whether more pages exist;
  // only what the client gets counts as delivered.
  const returned = rows.slice(0, page.limit - 1);
  const newest = Math.max(0, ...returned.filter((m) => m.senderId !== me).map((m) => m.id));
  if (me && newest > 0) ctx.delivery.mark(conversationId, me, newest);
  return rows.map(messageSnapshot);
}

/** Moves the viewer's read pointer forward (never back) and tells the conversation. */
export async function markConversationRead(ctx: SignedInContext, conversationId: string, messageId?: string | null) {
  const me = ctx.viewer.id;
  const { conversation, membership } = await requireReadable(ctx, conversationId);
  if (!membership) throw forbidden('Join this conversation to track what you have read');
  let upTo: number | null = null;
  if (messageId != null) {
    const id = parseId(messageId, 'Message');
    const message = await ctx.db.message.findUnique({ where: { id }, select: { conversationId: true } });
    if (!message || message.conversationId !== conversation.id) throw badInput({ messageId: 'must be a message of this conversation' });
    upTo = id;
  } else {
    upTo = conversation.lastMessageId;
  }
  if (upTo === null) return conversation;
  // The read receipt's outbox event (`conversation.read`) is written by the same statement,
  // only when the pointer moved.
  const moved = await ctx.db.$queryRaw<Array<{ lastReadAt: Date }>>`
    WITH moved AS (
      UPDATE "Participant"
      SET "lastReadMessageId" = ${upTo}, "lastReadAt" = (now() AT TIME ZONE 'UTC'),
          "lastDeliveredMessageId" = GREATEST(COALESCE("lastDeliveredMessageId", 0), ${upTo})
      WHERE "id" = ${membership.id} AND ("lastReadMessageId" IS NULL OR "lastReadMessageId" < ${upTo})
      RETURNING "lastReadAt"
    ), recorded AS (
      INSERT INTO "OutboxEvent" (topic, type, payload, "createdAt")
      SELECT ${`conversation:${conversation.id}`}, 'conversation.read',
             jsonb_build_object('conversationId', ${conversation.id}::int, 'userId', ${me}::int, 'messageId', ${upTo}::int,
                                'readAt', to_char("lastReadAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
             (now() AT TIME ZONE 'UTC')
      FROM moved
    )
    SELECT "lastReadAt" FROM moved`;
  if (moved.length > 0) {
    ctx.outbox.kick();
    await ctx.bus.publish(topics.conversation(conversation.id), {
      type: 'readReceipt',
      conversationId: conversation.id,
      // The row read when the request was authenticated: no need to read it again.
      user: userSnapshot(ctx.viewer.user),
      messageId: upTo,
      readAt: moved[0].lastReadAt.toISOString(),
    });
    await announceUpdate(ctx, conversation.id, [me]);
  }
  return conversation;
}

export async function setTyping(ctx: SignedInContext, conversationId: string, isTyping: boolean): Promise<boolean> {
  const { conversation, membership } = await requireReadable(ctx, conversationId);
  if (!membership) throw forbidden('Join this conversation to type in it');
  await ctx.typing.set(conversation.id, userSnapshot(ctx.viewer.user), isTyping);
  return true;
}
