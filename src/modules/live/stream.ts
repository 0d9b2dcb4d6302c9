import type { SignedInContext } from '../../schema/context.ts';
import type { BusEvent, EventStream } from '../../lib/events.ts';
import { messageInclude, messageSnapshot } from '../messages/snapshot.ts';
import type { Follower } from './watch.ts';

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
 * The events of one conversation for one viewer, in order, decided as each event arrives.
 * Messages carry their sequence number: one that arrives ahead of an earlier one (two
 * instances publishing at once) is held until the earlier one arrives, or until the missing
 * ones are read from the database (every hole at once) if they have not come within
 * GAP_WAIT_MS. Typing of the viewer themself is left out, and the stream ends as soon as the
 * viewer is removed from the conversation. The stream starts at `nextSeq`; `conversation` was read after listening began.
 */
export function conversationStream(
  ctx: SignedInContext,
  events: EventStream<StreamItem>,
  conversation: { id: number; kind: string; lastSeq: number },
  nextSeq: number,
): EventStream<StreamItem> {
  const me = ctx.viewer.id;
  const held = new Map<number, Added>();
  let expected = nextSeq;
  let gapTimer: NodeJS.Timeout | undefined;
  /** Events that arrive while missing messages are read: they follow those. */
  let backlog: BusEvent[] | undefined;

  const releaseInOrder = () => {
    const before = expected;
    while (held.has(expected)) {
      const event = held.get(expected)!;
      held.delete(expected);
      expected++;
      events.emit(event);
    }
    // A gap waits GAP_WAIT_MS from when it opened: one that is new (or that moved) starts anew.
    if (held.size === 0 || expected !== before) {
      clearTimeout(gapTimer);
      gapTimer = undefined;
    }
    if (held.size > 0) gapTimer ??= setTimeout(() => void fillGap(), GAP_WAIT_MS);
  };
  events.onEnd(() => clearTimeout(gapTimer));

  /**
   * Reads the messages from `expected` up to (not including) `until` from the database and
   * hands them over in order, each one held already going out in its place; the events that
   * arrive meanwhile wait in `backlog` and follow.
   */
  const fill = async (until: number) => {
    clearTimeout(gapTimer);
    gapTimer = undefined;
    if (events.isClosed) return;
    backlog = [];
    try {
      const rows = await ctx.db.message.findMany({
        where: { conversationId: conversation.id, seq: { gte: expected, lt: until } },
        include: messageInclude,
        orderBy: { seq: 'asc' },
      });
      if (events.isClosed) return; // the subscriber left meanwhile: nothing reached them
      const read = new Map(rows.map((m) => [m.seq, m]));
      for (; expected < until; expected++) {
        const event = held.get(expected);
        held.delete(expected);
        const m = read.get(expected);
        if (event) events.emit(event);
        else if (m && !m.deletedAt) events.emit(delivered(ctx, { type: 'messageAdded', conversationId: m.conversationId, message: messageSnapshot(m) }));
      }
      releaseInOrder();
    } catch (err) {
      events.finish(err);
    } finally {
      const arrived = backlog;
      backlog = undefined;
      if (!events.isClosed) arrived.forEach(accept);
    }
  };
  // Every hole up to the newest message held is read at once: reading only up to the first one
  // held made each further hole wait GAP_WAIT_MS more, and everything newer behind it.
  const fillGap = () => (held.size > 0 ? fill(Math.max(...held.keys()) + 1) : undefined);

  const accept = (event: BusEvent) => {
    if (backlog) {
      backlog.push(event);
      return;
    }
    switch (event.type) {
      case 'messageAdded': {
        const { seq } = event.message;
        if (seq < expected) return; // already delivered (or from before this subscription)
        if (seq === expected && held.size === 0) {
          // The usual case, kept cheap: the next message, with nothing held back.
          expected++;
          events.emit(delivered(ctx, event));
          return;
        }
        held.set(seq, delivered(ctx, event));
        releaseInOrder();
        return;
      }
      case 'memberRemoved':
        if (event.userId === me && conversation.kind !== 'PUBLIC') {
          events.emit({ type: 'revoked' });
          events.finish();
        }
        return;
      case 'typing':
        if (event.user.id !== me) events.emit(event);
        return;
      default:
        events.emit(event);
    }
  };

  events.through(accept);
  // Messages stored whose events never came (lost by Redis, or by an instance stopped between
  // its commit and its publish) are read when the watch finds the conversation ahead of us.
  const follower: Follower = {
    get expected() {
      return expected;
    },
    behind(lastSeq) {
      if (!backlog && !events.isClosed) void fill(Math.max(lastSeq, ...held.keys()) + 1);
    },
  };
  events.onEnd(ctx.conversationWatch.follow(conversation.id, follower));
  // Messages sent between the read that gave `nextSeq` and the moment listening began were
  // published before anyone here listened: they come from the database, once.
  if (conversation.lastSeq >= expected) void fill(conversation.lastSeq + 1);
  return events;
}

/**
 * A message reaching a recipient's live connection marks it delivered for them. The event
 * object itself passes on unchanged: subscribers share results by event identity.
 */
function delivered(ctx: SignedInContext, event: Added): Added {
  if (event.message.senderId !== ctx.viewer.id) ctx.delivery.mark(event.conversationId, ctx.viewer.id, event.message.id);
  return event;
}

/**
 * Everything addressed to one user, with deliveries recorded as they go out. A new message is
 * also an update of its conversation, announced right after it (one publish serves both).
 */
export function userStream(ctx: SignedInContext, events: EventStream<StreamItem>): EventStream<StreamItem> {
  const firstTime = recentIds(USER_STREAM_REMEMBERS);
  return events.through((event) => {
    if (event.type === 'messageAdded') {
      if (!firstTime(event.message.id)) return;
      events.emit(delivered(ctx, event));
      events.emit({ type: 'conversationUpdated', conversationId: event.conversationId });
    } else if (event.type === 'conversationUpdated' || event.type === 'call') events.emit(event);
  });
}

/**
 * Messages a user stream remembers having passed on. A send retried after a failure is
 * announced again (messages/service.ts), and a user's stream, unlike a conversation's, has no
 * `seq` to tell a message it had: it remembers the ids of the last ones instead.
 */
const USER_STREAM_REMEMBERS = 64;

/** A check that answers true the first time it sees an id among the last `size` ids. */
function recentIds(size: number): (id: number) => boolean {
  const order: number[] = [];
  const seen = new Set<number>();
  return (id) => {
    if (seen.has(id)) return false;
    seen.add(id);
    if (order.push(id) > size) seen.delete(order.shift()!);
    return true;
  };
}
