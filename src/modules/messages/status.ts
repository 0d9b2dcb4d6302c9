import type { Context } from '../../schema/context.ts';
import type { MessageSnapshot } from '../../lib/events.ts';

type Status = 'SENT' | 'DELIVERED' | 'READ';

/**
 * Status of several messages in one query: per (conversation, sender), how far every other
 * participant has read (the minimum) and how far any has received (the maximum).
 */
export async function messageStatuses(ctx: Context, messages: readonly Pick<MessageSnapshot, 'id' | 'conversationId' | 'senderId'>[]): Promise<Status[]> {
  const pairs = [...new Map(messages.map((m) => [`${m.conversationId}:${m.senderId ?? 0}`, m])).values()];
  const rows = await ctx.db.$queryRaw<Array<{ c: number; s: number; read: number | null; delivered: number | null }>>`
    SELECT k.c, k.s,
           min(COALESCE(p."lastReadMessageId", 0)) AS read,
           max(GREATEST(COALESCE(p."lastDeliveredMessageId", 0), COALESCE(p."lastReadMessageId", 0))) AS delivered
    FROM unnest(${pairs.map((m) => m.conversationId)}::int[], ${pairs.map((m) => m.senderId ?? 0)}::int[]) AS k(c, s)
    JOIN "Participant" p ON p."conversationId" = k.c AND p."userId" <> k.s AND p."leftAt" IS NULL
    GROUP BY k.c, k.s`;
  const marks = new Map(rows.map((r) => [`${r.c}:${r.s}`, r]));
  return messages.map((m) => {
    const mark = marks.get(`${m.conversationId}:${m.senderId ?? 0}`);
    if (!mark) return 'SENT';
    if (Number(mark.read) >= m.id) return 'READ';
    return Number(mark.delivered) >= m.id ? 'DELIVERED' : 'SENT';
  });
}
