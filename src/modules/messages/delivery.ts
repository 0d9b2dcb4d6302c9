import type pg from 'pg';
import type { Logger } from '../../lib/logger.ts';

/**
 * Records that messages reached a recipient (a live connection received them, or a fetch
 * returned them), which turns a message's status to DELIVERED. Marks are gathered and written
 * in one statement per flush, so delivering an event costs no query per subscriber. A flush
 * a second keeps the status at most a second behind while a busy conversation's members are
 * each written once per second rather than once per message.
 */
export class DeliveryTracker {
  private marks = new Map<string, { conversationId: number; userId: number; messageId: number }>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sql: pg.Pool,
    private readonly log: Logger,
    private readonly flushMs = 1000,
  ) {}

  mark(conversationId: number, userId: number, messageId: number): void {
    const key = `${conversationId}:${userId}`;
    const current = this.marks.get(key);
    if (current && current.messageId >= messageId) return;
    this.marks.set(key, { conversationId, userId, messageId });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.marks.size === 0) return;
    const batch = [...this.marks.values()];
    this.marks = new Map();
    try {
      // Only ever forward: a late, smaller mark never moves the pointer back.
      await this.sql.query({
        name: 'record-deliveries',
        text: `UPDATE "Participant" p SET "lastDeliveredMessageId" = v.m
               FROM unnest($1::int[], $2::int[], $3::int[]) AS v(c, u, m)
               WHERE p."conversationId" = v.c AND p."userId" = v.u
                 AND (p."lastDeliveredMessageId" IS NULL OR p."lastDeliveredMessageId" < v.m)`,
        values: [batch.map((b) => b.conversationId), batch.map((b) => b.userId), batch.map((b) => b.messageId)],
      });
    } catch (err) {
      this.log.warn({ err }, 'recording deliveries failed');
    }
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Messages that reached a recipient, written in batches. */
    delivery: DeliveryTracker;
  }
}
