import type { Conversation, Participant } from '../../generated/prisma/client.ts';
import type { Context, SignedInContext } from '../../schema/context.ts';
import { forbidden, notFound, unauthenticated } from '../../lib/errors.ts';
import { parseDatabaseId } from '../../lib/ids.ts';

/**
 * Who may do what with a conversation, in one place. Participants read and post; anyone
 * signed in may read, join and post in a PUBLIC room; owners and admins of a group manage it.
 */

/**
 * The viewer's id, or UNAUTHENTICATED. Most callers hold a SignedInContext (their field says
 * `t.withAuth({ signedIn: true })`) and read `ctx.viewer` directly; `requireReadable` and
 * `requireManager` take any Context, so they refuse an anonymous caller themselves instead of
 * trusting every caller's scope.
 */
export function viewerId(ctx: Context): number {
  if (!ctx.viewer) throw unauthenticated(ctx.authProblem ?? undefined);
  return ctx.viewer.id;
}

export interface Access {
  conversation: Conversation;
  membership: Participant | null;
}

/** An id from inside the server (GraphQL's ID scalar checked the client's); NOT_FOUND if it names nothing. */
export function parseId(id: string | number, what: string): number {
  const n = parseDatabaseId(typeof id === 'number' ? id : String(id));
  if (n === null) throw notFound(what);
  return n;
}

/** The conversation and the viewer's membership; NOT_FOUND if absent, FORBIDDEN for a stranger. */
export async function requireReadable(ctx: Context, conversationId: string | number): Promise<Access> {
  const userId = viewerId(ctx);
  const id = parseId(conversationId, 'Conversation');
  // Plain SQL on this hot path (every send, read and subscription): one prepared statement, no query compiler.
  const { rows: [row] } = await ctx.sql.query<Conversation & { membership: Participant | null }>({
    name: 'conversation-access',
    text: `SELECT c.*, (SELECT row_to_json(p) FROM "Participant" p
                        WHERE p."conversationId" = c.id AND p."userId" = $2 AND p."leftAt" IS NULL) AS membership
           FROM "Conversation" c WHERE c.id = $1`,
    values: [id, userId],
  });
  if (!row) throw notFound('Conversation');
  const { membership: json, ...conversation } = row;
  const membership = json ? reviveParticipant(json) : null;
  if (!membership && conversation.kind !== 'PUBLIC') throw forbidden('You are not a participant of this conversation');
  return { conversation, membership };
}

/**
 * row_to_json gives timestamps as strings, without a zone since the columns hold UTC; the rest
 * of the code expects a Participant row.
 */
function reviveParticipant(json: Participant): Participant {
  const date = (v: unknown) => (v == null ? null : new Date(`${String(v)}Z`));
  return { ...json, joinedAt: date(json.joinedAt)!, leftAt: date(json.leftAt), lastReadAt: date(json.lastReadAt) };
}

/** As `requireReadable`, and a member: joins a PUBLIC room on the way if needed. */
export async function requireMember(ctx: SignedInContext, conversationId: string | number): Promise<Access & { membership: Participant }> {
  const access = await requireReadable(ctx, conversationId);
  if (access.membership) return access as Access & { membership: Participant };
  const membership = await ctx.db.participant.upsert({
    where: { conversationId_userId: { conversationId: access.conversation.id, userId: ctx.viewer.id } },
    create: { conversationId: access.conversation.id, userId: ctx.viewer.id },
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
