import type { Conversation, Participant, Prisma } from '../../generated/prisma/client.ts';
import type { Context } from '../../graphql/context.ts';
import { forbidden, notFound, unauthenticated } from '../../graphql/errors.ts';

/**
 * Who may do what with a conversation, in one place. Participants read and post; anyone
 * signed in may read, join and post in a PUBLIC room; owners and admins of a group manage it.
 */

export function viewerId(ctx: Context): number {
  if (!ctx.viewer) throw unauthenticated(ctx.authProblem ?? undefined);
  return ctx.viewer.id;
}

/** The conversations a user may read, as a Prisma filter. */
export function readableBy(userId: number): Prisma.ConversationWhereInput {
  return { OR: [{ kind: 'PUBLIC' }, { participants: { some: { userId, leftAt: null } } }] };
}

export interface Access {
  conversation: Conversation;
  membership: Participant | null;
}

export function parseId(id: string | number, what: string): number {
  const n = Number(id);
  if (!Number.isSafeInteger(n) || n <= 0) throw notFound(what);
  return n;
}

/** The conversation and the viewer's membership; NOT_FOUND if absent, FORBIDDEN for a stranger. */
export async function requireReadable(ctx: Context, conversationId: string | number): Promise<Access> {
  const userId = viewerId(ctx);
  const id = parseId(conversationId, 'Conversation');
  const conversation = await ctx.db.conversation.findUnique({
    where: { id },
    include: { participants: { where: { userId, leftAt: null } } },
  });
  if (!conversation) throw notFound('Conversation');
  const { participants, ...rest } = conversation;
  const membership = participants[0] ?? null;
  if (!membership && conversation.kind !== 'PUBLIC') throw forbidden('You are not a participant of this conversation');
  return { conversation: rest, membership };
}

/** As `requireReadable`, and a member: joins a PUBLIC room on the way if needed. */
export async function requireMember(ctx: Context, conversationId: string | number): Promise<Access & { membership: Participant }> {
  const access = await requireReadable(ctx, conversationId);
  if (access.membership) return access as Access & { membership: Participant };
  const membership = await ctx.db.participant.upsert({
    where: { conversationId_userId: { conversationId: access.conversation.id, userId: ctx.viewer!.id } },
    create: { conversationId: access.conversation.id, userId: ctx.viewer!.id },
    update: { leftAt: null, joinedAt: new Date() },
  });
  return { ...access, membership };
}

/** Group management: the group's owner or admins, or a site admin. */
export async function requireManager(ctx: Context, conversationId: string | number): Promise<Access> {
  const access = await requireReadable(ctx, conversationId);
  if (access.conversation.kind === 'DIRECT') throw forbidden('A direct conversation has no members to manage');
  const role = access.membership?.role;
  if (role !== 'OWNER' && role !== 'ADMIN' && ctx.viewer?.role !== 'ADMIN') {
    throw forbidden('Only the owner or an admin of this conversation can do this');
  }
  return access;
}
