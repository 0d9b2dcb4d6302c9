import { builder } from '../../schema/builder.ts';
import { loader } from '../../schema/context.ts';
import { forbidden } from '../../lib/errors.ts';
import { topics, type BusEvent } from '../../lib/events.ts';
import { CallEvent } from '../calls/schema.ts';
import { MessageRef } from '../messages/schema.ts';
import { asUser, UserRef } from '../users/schema.ts';
import { parseId, requireReadable } from '../conversations/access.ts';
import { ConversationRef } from '../conversations/schema.ts';
import { conversationStream, isRevoked, userStream, type StreamItem } from './stream.ts';

type Of<T extends BusEvent['type']> = Extract<BusEvent, { type: T }>;

const MessageAddedEvent = builder.objectRef<Of<'messageAdded'>>('MessageAddedEvent').implement({
  fields: (t) => ({ message: t.field({ type: MessageRef, resolve: (e) => e.message }) }),
});
const MessageEditedEvent = builder.objectRef<Of<'messageEdited'>>('MessageEditedEvent').implement({
  fields: (t) => ({ message: t.field({ type: MessageRef, resolve: (e) => e.message }) }),
});
const MessageDeletedEvent = builder.objectRef<Of<'messageDeleted'>>('MessageDeletedEvent').implement({
  fields: (t) => ({ messageId: t.exposeID('messageId'), conversationId: t.exposeID('conversationId') }),
});
const TypingEvent = builder.objectRef<Of<'typing'>>('TypingEvent').implement({
  fields: (t) => ({
    user: t.field({ type: UserRef, resolve: (e) => asUser(e.user) }),
    conversationId: t.exposeID('conversationId'),
    isTyping: t.exposeBoolean('isTyping'),
  }),
});
const ReadReceiptEvent = builder.objectRef<Of<'readReceipt'>>('ReadReceiptEvent').implement({
  fields: (t) => ({
    user: t.field({ type: UserRef, resolve: (e) => asUser(e.user) }),
    conversationId: t.exposeID('conversationId'),
    messageId: t.exposeID('messageId'),
    readAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.readAt) }),
  }),
});
const ConversationUpdatedEvent = builder.objectRef<Of<'conversationUpdated'>>('ConversationUpdatedEvent').implement({
  fields: (t) => ({
    conversation: t.field({
      type: ConversationRef,
      resolve: (e, _args, ctx) =>
        loader(ctx, 'conversationById', async (ids: readonly number[]) => {
          const rows = await ctx.db.conversation.findMany({ where: { id: { in: [...ids] } } });
          return ids.map((id) => rows.find((r) => r.id === id)!);
        }).load(e.conversationId),
    }),
  }),
});

const typeNames: Partial<Record<BusEvent['type'], string>> = {
  messageAdded: 'MessageAddedEvent',
  messageEdited: 'MessageEditedEvent',
  messageDeleted: 'MessageDeletedEvent',
  typing: 'TypingEvent',
  readReceipt: 'ReadReceiptEvent',
  conversationUpdated: 'ConversationUpdatedEvent',
  call: 'CallEvent',
};
const resolveType = (event: BusEvent) => typeNames[event.type]!;

const ConversationEvent = builder.unionType('ConversationEvent', {
  types: [MessageAddedEvent, MessageEditedEvent, MessageDeletedEvent, TypingEvent, ReadReceiptEvent],
  resolveType,
});
const UserEvent = builder.unionType('UserEvent', {
  types: [MessageAddedEvent, ConversationUpdatedEvent, CallEvent],
  resolveType,
});

/** Passes events through; the removal marker becomes this subscription's last, FORBIDDEN, result. */
function deliver(item: StreamItem) {
  if (isRevoked(item)) throw forbidden('You are no longer a participant of this conversation');
  return item as never;
}

builder.subscriptionFields((t) => ({
  conversationEvents: t.withAuth({ signedIn: true }).field({
    type: ConversationEvent,
    description: 'Messages added, edited and deleted, typing and read receipts of one conversation.',
    args: { conversationId: t.arg.id({ required: true, description: 'A conversation you can read (FORBIDDEN otherwise).' }) },
    // Read, listen, read again. The first read refuses a stranger before the bus is touched and
    // fixes where the stream starts: every message after it reaches the subscriber, from the bus
    // or, if it was published before listening began, from the database. The second read sees
    // a removal that happened before listening began (whose event the stream cannot get). One
    // read after listening alone was not enough: a message committed between listening and
    // that read counted as older than the subscription, and its event was dropped.
    subscribe: async (_root, { conversationId }, ctx) => {
      const id = parseId(conversationId, 'Conversation');
      const start = (await requireReadable(ctx, id)).conversation.lastSeq + 1;
      return ctx.bus.stream([topics.conversation(id)], async (events) => {
        const { conversation } = await requireReadable(ctx, id);
        return conversationStream(ctx, events, conversation, start);
      });
    },
    resolve: deliver,
  }),
  userEvents: t.withAuth({ signedIn: true }).field({
    type: UserEvent,
    description: "New messages in the viewer's direct and group conversations, changes to their conversations, and calls.",
    subscribe: (_root, _args, ctx) => ctx.bus.stream([topics.user(ctx.viewer.id)], (events) => userStream(ctx, events)),
    resolve: deliver,
  }),
}));
