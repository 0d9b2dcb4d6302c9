import type pg from 'pg';
import { recordEvent, type NewOutboxEvent } from '../outbox/outbox.ts';
import { z } from 'zod';
import type { Conversation, Prisma } from '../../generated/prisma/client.ts';
import type { Context, SignedInContext } from '../../schema/context.ts';
import type { Services } from '../../services/services.ts';
import { badInput, forbidden, notFound } from '../../lib/errors.ts';
import { topics, type BusEvent } from '../../lib/events.ts';
import { parseDatabaseId } from '../../lib/ids.ts';
import { parseInput, uniqueViolation } from '../../lib/validation.ts';
import { parseId, requireManager, requireReadable } from './access.ts';

export const DEFAULT_ROOM_SLUG = 'general';
const MAX_MEMBERS_AT_ONCE = 500;

/** The public room every installation has from its first start. */
export async function ensureDefaultRoom(services: Services): Promise<void> {
  try {
    await services.db.conversation.upsert({
      where: { slug: DEFAULT_ROOM_SLUG },
      create: { kind: 'PUBLIC', slug: DEFAULT_ROOM_SLUG, title: 'General' },
      update: {},
    });
  } catch (err) {
    if (!uniqueViolation(err)) throw err; // another instance created it at the same moment
  }
}

const titleRule = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const idList = z.array(z.union([z.string(), z.number()])).max(MAX_MEMBERS_AT_ONCE, `must list at most ${MAX_MEMBERS_AT_ONCE} users`);

const createRules = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('DIRECT'), participantIds: idList.length(1, 'must name exactly one other user'), title: z.any().optional() }),
  z.object({ kind: z.literal('GROUP'), participantIds: idList.default([]), title: titleRule }),
  z.object({ kind: z.literal('PUBLIC'), participantIds: idList.default([]), title: titleRule }),
]);

/** Existing, active users among `ids` (the viewer left out), or BAD_USER_INPUT naming the field. */
async function existingUsers(ctx: SignedInContext, ids: Array<string | number>, field: string): Promise<number[]> {
  const me = ctx.viewer.id;
  const wanted = [...new Set(ids.map(Number))].filter((id) => id !== me);
  if (wanted.some((id) => !Number.isSafeInteger(id))) throw badInput({ [field]: 'must be user ids' });
  const found = await ctx.db.user.findMany({ where: { id: { in: wanted }, status: 'ACTIVE' }, select: { id: true } });
  if (found.length !== wanted.length) {
    const missing = wanted.filter((id) => !found.some((u) => u.id === id));
    throw badInput({ [field]: `unknown user(s): ${missing.join(', ')}` });
  }
  return wanted;
}

export async function createConversation(ctx: SignedInContext, input: unknown): Promise<Conversation> {
  const me = ctx.viewer.id;
  const data = parseInput(createRules, input);
  if (data.kind === 'DIRECT') return ensureDirectConversation(ctx, data.participantIds[0]);
  const members = await existingUsers(ctx, data.participantIds, 'participantIds');
  const conversation = await ctx.db.$transaction(async (tx) => {
    const created = await tx.conversation.create({
      data: {
        kind: data.kind,
        title: data.title,
        createdById: me,
        participants: {
          create: [{ userId: me, role: 'OWNER' }, ...members.map((userId) => ({ userId }))],
        },
      },
    });
    await recordEvent(tx, conversationEvent('conversation.created', created, { memberIds: [me, ...members] }));
    return created;
  });
  ctx.outbox.kick();
  await announceUpdate(ctx, conversation.id, [me, ...members]);
  return conversation;
}

/** The other user of a direct conversation with the viewer, and the pair's key. */
async function directPair(ctx: SignedInContext, userId: string | number) {
  const me = ctx.viewer.id;
  const other = Number(userId);
  if (other === me) throw badInput({ userId: 'cannot start a direct conversation with yourself' });
  const user = Number.isSafeInteger(other) ? await ctx.db.user.findUnique({ where: { id: other }, select: { id: true, status: true } }) : null;
  if (!user) throw notFound('User');
  return { me, other, user, directKey: [me, other].sort((a, b) => a - b).join(':') };
}

/** The direct conversation of the viewer and `userId` if they have one (reading never creates it). */
export async function findDirectConversation(ctx: SignedInContext, userId: string | number): Promise<Conversation | null> {
  const { directKey } = await directPair(ctx, userId);
  return ctx.db.conversation.findUnique({ where: { directKey } });
}

/** The one direct conversation of the viewer and `userId`, created on first use. */
export async function ensureDirectConversation(ctx: SignedInContext, userId: string | number): Promise<Conversation> {
  const { me, other, user, directKey } = await directPair(ctx, userId);
  const existing = await ctx.db.conversation.findUnique({ where: { directKey } });
  if (existing) return existing;
  if (user.status !== 'ACTIVE') throw forbidden('This user cannot receive messages');
  try {
    const conversation = await ctx.db.$transaction(async (tx) => {
      const created = await tx.conversation.create({
        data: {
          kind: 'DIRECT',
          directKey,
          createdById: me,
          participants: { create: [{ userId: me, role: 'MEMBER' }, { userId: other, role: 'MEMBER' }] },
        },
      });
      await recordEvent(tx, conversationEvent('conversation.created', created, { memberIds: [me, other] }));
      return created;
    });
    ctx.outbox.kick();
    await announceUpdate(ctx, conversation.id, [me, other]);
    return conversation;
  } catch (err) {
    // Both users opened it at the same moment: the unique directKey kept one; use it.
    if (!uniqueViolation(err)) throw err;
    return ctx.db.conversation.findUniqueOrThrow({ where: { directKey } });
  }
}

export async function getConversation(ctx: Context, id: string): Promise<Conversation> {
  return (await requireReadable(ctx, id)).conversation;
}

export async function publicRoomBySlug(ctx: SignedInContext, slug: string): Promise<Conversation> {
  const room = await ctx.db.conversation.findFirst({ where: { slug: slug.trim().toLowerCase(), kind: 'PUBLIC' } });
  if (!room) throw notFound('Room');
  return room;
}

/**
 * A page of the viewer's conversations, most recent activity first. The cursor is
 * "<lastActivityAt ms>:<id>", so pages stay stable while conversations keep moving up.
 */
export function listConversations(ctx: SignedInContext, after: string | undefined, limit: number) {
  const me = ctx.viewer.id;
  return pageByActivity(ctx, { participants: { some: { userId: me, leftAt: null } } }, after, limit);
}

export function listPublicConversations(ctx: Context, after: string | undefined, limit: number) {
  return pageByActivity(ctx, { kind: 'PUBLIC' }, after, limit);
}

async function pageByActivity(ctx: Context, where: Prisma.ConversationWhereInput, after: string | undefined, limit: number) {
  if (after) {
    const [time, rawId, ...rest] = after.split(':');
    const at = new Date(/^\d{1,15}$/.test(time) ? Number(time) : NaN);
    const id = parseDatabaseId(rawId);
    if (rest.length || Number.isNaN(at.getTime()) || id === null) throw badInput({ after: 'is not a cursor from this list' });
    where.OR = [{ lastActivityAt: { lt: at } }, { lastActivityAt: at, id: { lt: id } }];
  }
  return ctx.db.conversation.findMany({ where, orderBy: [{ lastActivityAt: 'desc' }, { id: 'desc' }], take: limit });
}

export const conversationCursor = (c: Conversation) => `${c.lastActivityAt.getTime()}:${c.id}`;

export async function addMembers(ctx: SignedInContext, conversationId: string, userIds: Array<string | number>) {
  const { conversation } = await requireManager(ctx, conversationId);
  const members = await existingUsers(ctx, parseInput(idList, userIds), 'userIds');
  await ctx.db.$transaction([
    ...members.map((userId) =>
      ctx.db.participant.upsert({
        where: { conversationId_userId: { conversationId: conversation.id, userId } },
        create: { conversationId: conversation.id, userId },
        update: { leftAt: null, joinedAt: new Date(), role: 'MEMBER' },
      }),
    ),
    touch(ctx.db, conversation.id),
    recordEvent(ctx.db, conversationEvent('conversation.members_added', conversation, { userIds: members })),
  ]);
  ctx.outbox.kick();
  await announceUpdate(ctx, conversation.id, await memberIds(ctx, conversation.id));
  return ctx.db.conversation.findUniqueOrThrow({ where: { id: conversation.id } });
}

export async function removeMember(ctx: Context, conversationId: string, userId: string | number) {
  const { conversation } = await requireManager(ctx, conversationId);
  const target = parseId(userId, 'Participant');
  const membership = await ctx.db.participant.findUnique({
    where: { conversationId_userId: { conversationId: conversation.id, userId: target } },
  });
  if (!membership || membership.leftAt) throw notFound('Participant');
  if (membership.role === 'OWNER') throw forbidden('The owner cannot be removed; they can leave');
  return leave(ctx, conversation, target);
}

export async function leaveConversation(ctx: Context, conversationId: string) {
  const { conversation, membership } = await requireReadable(ctx, conversationId);
  if (!membership) throw badInput({ conversationId: 'you are not a member of this conversation' });
  if (conversation.kind === 'DIRECT') throw badInput({ conversationId: 'a direct conversation cannot be left' });
  return leave(ctx, conversation, membership.userId);
}

async function leave(ctx: Context, conversation: Conversation, userId: number) {
  const before = await memberIds(ctx, conversation.id);
  await ctx.db.$transaction(async (tx) => {
    await tx.participant.update({
      where: { conversationId_userId: { conversationId: conversation.id, userId } },
      data: { leftAt: new Date(), role: 'MEMBER' },
    });
    // A group without an owner could not be managed: the longest-standing member takes over.
    const hasOwner = await tx.participant.count({ where: { conversationId: conversation.id, leftAt: null, role: 'OWNER' } });
    if (!hasOwner && conversation.kind === 'GROUP') {
      const heir = await tx.participant.findFirst({
        where: { conversationId: conversation.id, leftAt: null },
        orderBy: [{ role: 'asc' }, { joinedAt: 'asc' }],
      });
      if (heir) await tx.participant.update({ where: { id: heir.id }, data: { role: 'OWNER' } });
    }
    await touch(tx, conversation.id);
    await recordEvent(tx, conversationEvent('conversation.member_removed', conversation, { userId }));
  });
  ctx.outbox.kick();
  await ctx.bus.publish(topics.conversation(conversation.id), { type: 'memberRemoved', conversationId: conversation.id, userId });
  await announceUpdate(ctx, conversation.id, before);
  return ctx.db.conversation.findUniqueOrThrow({ where: { id: conversation.id } });
}

export async function renameConversation(ctx: Context, conversationId: string, title: string) {
  const { conversation } = await requireManager(ctx, conversationId);
  const newTitle = parseInput(z.object({ title: titleRule }), { title }).title;
  const [updated] = await ctx.db.$transaction([
    ctx.db.conversation.update({ where: { id: conversation.id }, data: { title: newTitle, lastActivityAt: new Date() } }),
    recordEvent(ctx.db, conversationEvent('conversation.updated', { ...conversation, title: newTitle })),
  ]);
  ctx.outbox.kick();
  await announceUpdate(ctx, conversation.id, await memberIds(ctx, conversation.id));
  return updated;
}

/** The outbox event of a conversation created or changed, or of its members changing. */
function conversationEvent(type: string, conversation: Conversation, extra: Record<string, unknown> = {}): NewOutboxEvent {
  return {
    type,
    topic: `conversation:${conversation.id}`,
    payload: { conversationId: conversation.id, kind: conversation.kind, title: conversation.title, ...extra },
  };
}

function touch(db: Pick<Context['db'], 'conversation'>, id: number) {
  return db.conversation.update({ where: { id }, data: { lastActivityAt: new Date() } });
}

/** The current members of one conversation. */
export async function memberIds(services: Services, conversationId: number): Promise<number[]> {
  return (await membersOf(services.sql, [conversationId])).get(conversationId) ?? [];
}

/** The current members of each of `conversationIds`, in one query. */
export async function membersOf(sql: pg.Pool, conversationIds: number[]): Promise<Map<number, number[]>> {
  if (conversationIds.length === 0) return new Map();
  const { rows } = await sql.query<{ conversationId: number; userIds: number[] }>({
    name: 'members-of-conversations',
    text: `SELECT "conversationId", array_agg("userId") AS "userIds" FROM "Participant"
           WHERE "conversationId" = ANY($1::int[]) AND "leftAt" IS NULL GROUP BY "conversationId"`,
    values: [[...new Set(conversationIds)]],
  });
  return new Map(rows.map((r) => [r.conversationId, r.userIds]));
}

/** Tells each user's `userEvents` that the conversation changed for them. */
export async function announceUpdate(services: Services, conversationId: number, userIds: number[]): Promise<void> {
  const event: BusEvent = { type: 'conversationUpdated', conversationId };
  await services.bus.publish(userIds.map(topics.user), event);
}

