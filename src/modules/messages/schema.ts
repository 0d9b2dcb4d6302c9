import { resolveCursorConnection, type DefaultConnectionArguments } from '@pothos/plugin-relay';
import { builder } from '../../schema/builder.ts';
import { loader, type Context } from '../../schema/context.ts';
import type { MessageSnapshot } from '../../lib/events.ts';
import { FileRef } from '../files/schema.ts';
import { requireReadable } from '../conversations/access.ts';
import { ConversationRef } from '../conversations/schema.ts';
import { asUser, UserRef } from '../users/schema.ts';
import { deleteMessage, editMessage, markConversationRead, messagePage, sendMessage, setTyping } from './service.ts';
import { messageInclude, messageSnapshot } from './snapshot.ts';
import { messageStatuses } from './status.ts';

export const MessageKind = builder.enumType('MessageKind', {
  values: ['TEXT', 'IMAGE', 'FILE', 'AUDIO', 'VIDEO', 'SYSTEM'] as const,
});
export const MessageStatus = builder.enumType('MessageStatus', {
  description: 'SENT, then DELIVERED once a recipient got it, then READ once every other participant read it.',
  values: ['SENT', 'DELIVERED', 'READ'] as const,
});

type ReplySnapshot = NonNullable<MessageSnapshot['replyTo']>;
export const MessageRef = builder.objectRef<MessageSnapshot | ReplySnapshot>('Message');
MessageRef.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    conversationId: t.exposeID('conversationId'),
    seq: t.exposeInt('seq', { description: 'Position in the conversation: 1, 2, 3… with no gaps.' }),
    sender: t.field({ type: UserRef, nullable: true, resolve: (m) => (m.sender ? asUser(m.sender) : null) }),
    content: t.exposeString('content', { description: 'Plain text, exactly as sent; never HTML.' }),
    kind: t.field({ type: MessageKind, resolve: (m) => m.kind }),
    attachments: t.field({ type: [FileRef], resolve: (m) => m.attachments ?? [] }),
    replyTo: t.field({ type: MessageRef, nullable: true, resolve: (m) => m.replyTo ?? null }),
    isEdited: t.boolean({ resolve: (m) => m.editedAt !== null }),
    editedAt: t.field({ type: 'DateTime', nullable: true, resolve: (m) => m.editedAt as unknown as Date | null }),
    createdAt: t.field({ type: 'DateTime', resolve: (m) => m.createdAt as unknown as Date }),
    clientId: t.exposeString('clientId', { nullable: true }),
    status: t.field({
      type: MessageStatus,
      resolve: (m, _args, ctx) => loader(ctx, 'messageStatus', (keys: readonly typeof m[]) => messageStatuses(ctx, keys)).load(m),
    }),
  }),
});

/** History of a conversation, newest page by default; catch up with `after: <last id seen>`. */
export function messagesConnection(ctx: Context, conversationId: number, args: DefaultConnectionArguments) {
  const paging = args.first == null && args.last == null && args.after == null ? { ...args, last: 50 } : args;
  return resolveCursorConnection<Promise<MessageSnapshot[]>>(
    { args: paging, toCursor: (m) => String(m.id), defaultSize: 50, maxSize: 200 },
    (page) => messagePage(ctx, conversationId, page),
  );
}

builder.queryFields((t) => ({
  messages: t.withAuth({ signedIn: true }).connection({
    type: MessageRef,
    description: 'History of a conversation you can read, oldest first within a page: the newest 50 without paging arguments; catch up with `first` and `after: <last id seen>`, page back with `last` and `before`.',
    args: { conversationId: t.arg.id({ required: true, description: 'The conversation.' }) },
    resolve: async (_root, { conversationId, ...args }, ctx) => {
      const { conversation } = await requireReadable(ctx, conversationId);
      return messagesConnection(ctx, conversation.id, args);
    },
  }),
}));

const SendMessageInput = builder.inputType('SendMessageInput', {
  fields: (t) => ({
    conversationId: t.id({ description: 'Where to send; or give recipientId instead.' }),
    recipientId: t.id({ description: 'Sends to the direct conversation with this user, made if needed.' }),
    content: t.string({ description: 'Plain text, up to 10,000 characters; may be empty only with attachments.' }),
    kind: t.field({ type: MessageKind, description: "Decided from the attachments when not given (TEXT without any); SYSTEM is the server's own." }),
    attachmentIds: t.idList({ description: 'Your uploads (uploadFile) to attach, at most 10.' }),
    replyToId: t.id({ description: 'The message of the same conversation this one answers.' }),
    clientId: t.string({ description: 'Your id for this send: sending it again returns the first message.' }),
  }),
});

builder.mutationFields((t) => ({
  sendMessage: t.withAuth({ signedIn: true }).field({
    type: MessageRef,
    description: "Sends a message; its participants' conversationEvents and userEvents get it once it is stored.",
    args: { input: t.arg({ type: SendMessageInput, required: true, description: 'Where to, what, and your clientId for safe retries.' }) },
    resolve: (_root, { input }, ctx) => sendMessage(ctx, input),
  }),
  editMessage: t.withAuth({ signedIn: true }).field({
    type: MessageRef,
    description: 'Replaces the text of one of your messages.',
    args: {
      id: t.arg.id({ required: true, description: 'The message.' }),
      content: t.arg.string({ required: true, description: 'The new text, at most 10,000 characters (empty only when the message has attachments).' }),
    },
    resolve: (_root, { id, content }, ctx) => editMessage(ctx, id, content),
  }),
  deleteMessage: t.withAuth({ signedIn: true }).id({
    description: 'Deletes a message (its sender, or an admin) and returns its id.',
    args: { id: t.arg.id({ required: true, description: 'The message.' }) },
    resolve: (_root, { id }, ctx) => deleteMessage(ctx, id),
  }),
  setTyping: t.withAuth({ signedIn: true }).boolean({
    description: 'Tells the conversation you are typing; repeat every few seconds while you do (it lapses after 6 seconds).',
    args: {
      conversationId: t.arg.id({ required: true, description: 'The conversation.' }),
      isTyping: t.arg.boolean({ required: true, description: 'true while typing, false once stopped.' }),
    },
    resolve: (_root, { conversationId, isTyping }, ctx) => setTyping(ctx, conversationId, isTyping),
  }),
}));

// A conversation's messages are this module's: the fields are added to the Conversation type here,
// so conversations need nothing of messages.
builder.objectFields(ConversationRef, (t) => ({
    lastMessage: t.field({
      type: MessageRef,
      nullable: true,
      resolve: async (c, _args, ctx) => {
        if (c.lastMessageId === null) return null;
        return loader(ctx, 'messageById', async (ids: readonly number[]) => {
          const rows = await ctx.db.message.findMany({ where: { id: { in: [...ids] } }, include: messageInclude });
          return ids.map((id) => rows.find((r) => r.id === id) ?? null);
        })
          .load(c.lastMessageId)
          .then((m) => (m && !m.deletedAt ? messageSnapshot(m) : null));
      },
    }),
    messages: t.connection({
      type: MessageRef,
      resolve: (c, args, ctx) => messagesConnection(ctx, c.id, args),
    }),
}));

builder.mutationFields((t) => ({
  markConversationRead: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'Moves your read position forward to messageId (default: the last message); never back.',
    args: {
      conversationId: t.arg.id({ required: true, description: 'The conversation.' }),
      messageId: t.arg.id({ description: 'The last message read; the newest when not given.' }),
    },
    resolve: (_root, { conversationId, messageId }, ctx) => markConversationRead(ctx, conversationId, messageId),
  }),
}));
