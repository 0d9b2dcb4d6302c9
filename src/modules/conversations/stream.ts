import type { Context } from '../../graphql/context.ts';
import type { BusEvent, EventStream } from '../../lib/events.ts';
import { messageInclude, messageSnapshot } from '../messages/snapshot.ts';

type Added = Extract<BusEvent, { type: 'messageAdded' }>;
/**
 * Yielded once when the viewer stops being a member; the subscription then ends with FORBIDDEN.
 * A new object each time: results are shared by event object, and this one is per subscriber.
 */
type Revoked = { type: 'revoked' };
export type StreamItem = BusEvent | Revoked;
export const isRevoked = (item: StreamItem): item is Revoked => item.type === 'revoked';

/** How long an out-of-order message waits for the ones before it before they are read from the database. */
const GAP_WAIT_MS = 1500;

/**
 * The events of one conversation for one viewer, in order. Messages carry their sequence
 * number: one that arrives ahead of an earlier one (two instances publishing at once) is held
 * until the earlier one arrives, or fetched if it does not. Typing of the viewer themself is
 * left out, and the stream ends as soon as the viewer is removed from the conversation.
 */
export async function* conversationStream(
  ctx: Context,
  events: EventStream,
  conversation: { id: number; kind: string },
  nextSeq: number,
): AsyncGenerator<StreamItem> {
  const me = ctx.viewer!.id;
  const held = new Map<number, Added>();
  let expected = nextSeq;
  let pending: Promise<IteratorResult<BusEvent>> | undefined;

  const deliverInOrder = function* (): Generator<Added> {
    while (held.has(expected)) {
      const event = held.get(expected)!;
      held.delete(expected);
      expected++;
      yield event;
    }
  };

  try {
    for (;;) {
      pending ??= events.next();
      const result = held.size > 0 ? await withTimeout(pending, GAP_WAIT_MS) : await pending;
      if (result === 'timeout') {
        const firstHeld = Math.min(...held.keys());
        const missing = await ctx.db.message.findMany({
          where: { conversationId: conversation.id, seq: { gte: expected, lt: firstHeld } },
          include: messageInclude,
          orderBy: { seq: 'asc' },
        });
        for (const m of missing) {
          if (!m.deletedAt) yield delivered(ctx, { type: 'messageAdded', conversationId: m.conversationId, message: messageSnapshot(m) });
        }
        expected = firstHeld;
        yield* deliverInOrder();
        continue;
      }
      pending = undefined;
      if (result.done) return;
      const event = result.value;
      switch (event.type) {
        case 'messageAdded': {
          const { seq } = event.message;
          if (seq < expected) break; // already delivered (or from before this subscription)
          if (seq === expected && held.size === 0) {
            // The usual case, kept cheap: the next message, with nothing held back.
            expected++;
            yield delivered(ctx, event);
            break;
          }
          held.set(seq, delivered(ctx, event));
          yield* deliverInOrder();
          break;
        }
        case 'memberRemoved':
          if (event.userId === me && conversation.kind !== 'PUBLIC') {
            yield { type: 'revoked' };
            return;
          }
          break;
        case 'typing':
          if (event.user.id !== me) yield event;
          break;
        default:
          yield event;
      }
    }
  } finally {
    await events.return();
  }
}

/**
 * A message reaching a recipient's live connection marks it delivered for them. The event
 * object itself passes on unchanged: subscribers share results by event identity.
 */
function delivered(ctx: Context, event: Added): Added {
  if (event.message.senderId !== ctx.viewer!.id) ctx.delivery.mark(event.conversationId, ctx.viewer!.id, event.message.id);
  return event;
}

/**
 * Everything addressed to one user, with deliveries recorded as they go out. A new message is
 * also an update of its conversation, announced right after it (one publish serves both).
 */
export async function* userStream(ctx: Context, events: EventStream): AsyncGenerator<StreamItem> {
  try {
    for await (const event of events) {
      if (event.type === 'messageAdded') {
        yield delivered(ctx, event);
        yield { type: 'conversationUpdated', conversationId: event.conversationId };
      } else if (event.type === 'conversationUpdated' || event.type === 'call') yield event;
    }
  } finally {
    await events.return();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
