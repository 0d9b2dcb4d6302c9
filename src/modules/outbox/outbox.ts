import type { Prisma } from '../../generated/prisma/client.ts';
import type { Db } from '../../lib/db.ts';

/** An event to record with the change it describes. */
export interface NewOutboxEvent {
  type: string;
  topic: string;
  payload: Record<string, unknown>;
}

/**
 * The write that records `event`: it goes in the same transaction as the change (a
 * `$transaction([...])` batch, or an interactive transaction's client), so the event is stored
 * if and only if the change is. The relay then hands it to every consumer.
 */
export function recordEvent(db: Db | Prisma.TransactionClient, event: NewOutboxEvent) {
  return db.outboxEvent.create({ data: { type: event.type, topic: event.topic, payload: event.payload as Prisma.InputJsonValue } });
}
