import { resolveCursorConnection } from '@pothos/plugin-relay';
import type { Conversation, Participant, User } from '../../generated/prisma/client.ts';
import { builder } from '../../schema/builder.ts';
import { loader, type Context } from '../../schema/context.ts';
import { forwardOnly } from '../../lib/errors.ts';
import { UserRef } from '../users/schema.ts';
import { requireMember } from './access.ts';
import {
  addMembers,
  conversationCursor,
  createConversation,
  DEFAULT_ROOM_SLUG,
  ensureDirectConversation,
  findDirectConversation,
  getConversation,
  leaveConversation,
  listConversations,
  listPublicConversations,
  publicRoomBySlug,
  removeMember,
  renameConversation,
} from './service.ts';
import { unreadCounts } from './unread.ts';

export const ConversationKind = builder.enumType('ConversationKind', { values: ['DIRECT', 'GROUP', 'PUBLIC'] as const });
export const ParticipantRole = builder.enumType('ParticipantRole', { values: ['OWNER', 'ADMIN', 'MEMBER'] as const });

const MAX_LISTED_PARTICIPANTS = 200;

/** Current members of several conversations in one query. */
function membersOf(ctx: Context, conversationId: number) {
  return loader(ctx, 'conversationMembers', async (ids: readonly number[]) => {
    const rows = await ctx.db.participant.findMany({
      where: { conversationId: { in: [...ids] }, leftAt: null },
      include: { user: true },
      orderBy: { joinedAt: 'asc' },
    });
    return ids.map((id) => rows.filter((r) => r.conversationId === id));
  }).load(conversationId);
}

const ConversationMember = builder.objectRef<Participant & { user: User }>('ConversationMember').implement({
  fields: (t) => ({
    user: t.field({ type: UserRef, resolve: (p) => p.user }),
    role: t.field({ type: ParticipantRole, resolve: (p) => p.role }),
    joinedAt: t.expose('joinedAt', { type: 'DateTime' }),
    lastReadMessageId: t.exposeID('lastReadMessageId', { nullable: true }),
    lastReadAt: t.expose('lastReadAt', { type: 'DateTime', nullable: true }),
  }),
});

export const ConversationRef = builder.objectRef<Conversation>('Conversation');
ConversationRef.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.field({ type: ConversationKind, resolve: (c) => c.kind }),
    title: t.exposeString('title', { nullable: true }),
    slug: t.exposeString('slug', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.field({
      type: 'DateTime',
      description: 'Time of the last activity: a message, or a change of members or title.',
      resolve: (c) => c.lastActivityAt,
    }),
    participants: t.field({
      type: [UserRef],
      description: `The current members (the first ${MAX_LISTED_PARTICIPANTS} for large public rooms).`,
      resolve: async (c, _args, ctx) => (await membersOf(ctx, c.id)).slice(0, MAX_LISTED_PARTICIPANTS).map((p) => p.user),
    }),
    members: t.field({
      type: [ConversationMember],
      resolve: async (c, _args, ctx) => (await membersOf(ctx, c.id)).slice(0, MAX_LISTED_PARTICIPANTS),
    }),
    unreadCount: t.int({
      description: "Messages from others after the viewer's read position.",
      resolve: (c, _args, ctx) => loader(ctx, 'unreadCount', (ids: readonly number[]) => unreadCounts(ctx, ids)).load(c.id),
    }),
  }),
});

function conversationsConnection(
  args: { first?: number | null; after?: string | null; last?: number | null; before?: string | null },
  fetch: (after: string | undefined, limit: number) => Promise<Conversation[]>,
) {
  forwardOnly(args);
  return resolveCursorConnection<Promise<Conversation[]>>(
    { args, toCursor: conversationCursor, defaultSize: 20, maxSize: 100 },
    ({ after, limit }) => fetch(after, limit),
  );
}

builder.queryFields((t) => ({
  conversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'A conversation you are a member of, or any public room (FORBIDDEN for others).',
    args: { id: t.arg.id({ required: true, description: 'The conversation.' }) },
    resolve: (_root, { id }, ctx) => getConversation(ctx, id),
  }),
  directConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    nullable: true,
    description: 'Your direct conversation with this user, or null when there is none yet.',
    args: { userId: t.arg.id({ required: true, description: 'The other user.' }) },
    resolve: (_root, { userId }, ctx) => findDirectConversation(ctx, userId),
  }),
  publicRoom: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'A public room by its slug; `general` exists from the first start.',
    args: { slug: t.arg.string({ required: true, defaultValue: DEFAULT_ROOM_SLUG, description: "The room's short name, as in its address." }) },
    resolve: (_root, { slug }, ctx) => publicRoomBySlug(ctx, slug),
  }),
  conversations: t.withAuth({ signedIn: true }).connection({
    type: ConversationRef,
    description: "The viewer's conversations, most recent activity first.",
    resolve: (_root, args, ctx) => conversationsConnection(args, (after, limit) => listConversations(ctx, after, limit)),
  }),
  publicConversations: t.withAuth({ signedIn: true }).connection({
    type: ConversationRef,
    description: 'Public rooms anyone signed in can read, join and post in.',
    resolve: (_root, args, ctx) => conversationsConnection(args, (after, limit) => listPublicConversations(ctx, after, limit)),
  }),
}));

const CreateConversationInput = builder.inputType('CreateConversationInput', {
  fields: (t) => ({
    kind: t.field({ type: ConversationKind, required: true, description: 'DIRECT (two people), GROUP (members you choose) or PUBLIC (anyone signed in).' }),
    participantIds: t.idList({ description: 'The other members; exactly one for DIRECT.' }),
    title: t.string({ description: 'Required for GROUP and PUBLIC.' }),
  }),
});

builder.mutationFields((t) => ({
  createConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'Starts a DIRECT conversation, a GROUP (you are its owner) or a PUBLIC room.',
    args: { input: t.arg({ type: CreateConversationInput, required: true, description: 'Its kind, members and title.' }) },
    resolve: (_root, { input }, ctx) => createConversation(ctx, input),
  }),
  ensureDirectConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'The direct conversation with this user, created on first use (one per pair).',
    args: { userId: t.arg.id({ required: true, description: 'The other user.' }) },
    resolve: (_root, { userId }, ctx) => ensureDirectConversation(ctx, userId),
  }),
  joinConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: 'Joins a public room.',
    args: { conversationId: t.arg.id({ required: true, description: 'The public room.' }) },
    resolve: async (_root, { conversationId }, ctx) => (await requireMember(ctx, conversationId)).conversation,
  }),
  leaveConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: "Leaves a group or public room (not a direct conversation); a group whose owner leaves gets its longest-standing member as owner.",
    args: { conversationId: t.arg.id({ required: true, description: 'The conversation to leave.' }) },
    resolve: (_root, { conversationId }, ctx) => leaveConversation(ctx, conversationId),
  }),
  addConversationMembers: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: "A group's owner and admins (or a site admin): adds members.",
    args: {
      conversationId: t.arg.id({ required: true, description: 'The conversation.' }),
      userIds: t.arg.idList({ required: true, description: 'The users to add.' }),
    },
    resolve: (_root, { conversationId, userIds }, ctx) => addMembers(ctx, conversationId, userIds),
  }),
  removeConversationMember: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: "A group's owner and admins (or a site admin): removes a member (not the owner); their conversationEvents end with FORBIDDEN.",
    args: {
      conversationId: t.arg.id({ required: true, description: 'The conversation.' }),
      userId: t.arg.id({ required: true, description: 'The member to remove.' }),
    },
    resolve: (_root, { conversationId, userId }, ctx) => removeMember(ctx, conversationId, userId),
  }),
  renameConversation: t.withAuth({ signedIn: true }).field({
    type: ConversationRef,
    description: "A group's owner and admins (or a site admin): changes its title.",
    args: {
      conversationId: t.arg.id({ required: true, description: 'The conversation.' }),
      title: t.arg.string({ required: true, description: 'The new title.' }),
    },
    resolve: (_root, { conversationId, title }, ctx) => renameConversation(ctx, conversationId, title),
  }),
}));
