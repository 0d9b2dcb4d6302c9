import type { Context } from '../../schema/context.ts';

/** Unread messages of the viewer in several conversations, in one query. */
export async function unreadCounts(ctx: Context, conversationIds: readonly number[]): Promise<number[]> {
  const me = ctx.viewer?.id;
  if (!me) return conversationIds.map(() => 0);
  const rows = await ctx.db.$queryRaw<Array<{ c: number; n: number }>>`
    SELECT p."conversationId" AS c, count(m.id)::int AS n
    FROM "Participant" p
    JOIN "Message" m ON m."conversationId" = p."conversationId"
      AND m.id > COALESCE(p."lastReadMessageId", 0)
      AND m."deletedAt" IS NULL
      AND m."senderId" IS DISTINCT FROM p."userId"
    WHERE p."userId" = ${me} AND p."leftAt" IS NULL AND p."conversationId" = ANY(${[...conversationIds]}::int[])
    GROUP BY p."conversationId"`;
  const counts = new Map(rows.map((r) => [Number(r.c), Number(r.n)]));
  return conversationIds.map((id) => counts.get(id) ?? 0);
}
