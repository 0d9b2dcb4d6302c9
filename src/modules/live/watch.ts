import type pg from 'pg';
import type { EventBus } from '../../lib/events.ts';
import type { Logger } from '../../lib/logger.ts';

/** How often quiet conversations are compared with the database, and how quiet they must be. */
export const IDLE_CHECK_MS = 2000;

/** One live stream of a conversation, as the watch sees it. */
export interface Follower {
  /** The `seq` of the next message the stream expects. */
  readonly expected: number;
  /** The conversation's newest message is `lastSeq`, which the stream has not had: it reads the rest. */
  behind(lastSeq: number): void;
}

/**
 * Notices messages that are stored but whose events never came. A stream finds a hole when a
 * later message arrives; the last messages before a conversation goes quiet have no later one.
 * They are lost when Redis drops events (while an instance subscribes again after an outage),
 * or when an instance stops between a commit and its publish. So the newest `seq` of every
 * conversation with live streams here is read again when the bus is back, and every
 * IDLE_CHECK_MS for the conversations that have been quiet that long: one statement for all of
 * them, and nothing while every conversation is busy (their next message shows any hole).
 */
export class ConversationWatch {
  private readonly followers = new Map<number, Set<Follower>>();
  /**
   * Each follower's `expected` at the last tick: one that has not moved since has delivered no
   * message for a whole tick, and its conversation counts as quiet. Read here rather than
   * stamped by the stream, which would cost a clock read per delivered event.
   */
  private readonly expectedAtLastTick = new Map<Follower, number>();
  private timer?: NodeJS.Timeout;
  /** A check under way, and whether another was asked for meanwhile (a resync must not be skipped). */
  private checking?: Promise<void>;
  private again = false;
  private failing = false;

  constructor(
    private readonly sql: pg.Pool,
    bus: EventBus,
    private readonly log: Logger,
    private readonly idleMs = IDLE_CHECK_MS,
  ) {
    bus.activity.on('resync', () => {
      if (this.checking) this.again = true;
      else void this.check(() => true);
    });
  }

  /** Watches `follower` of `conversationId` until the returned function is called. */
  follow(conversationId: number, follower: Follower): () => void {
    let set = this.followers.get(conversationId);
    if (!set) this.followers.set(conversationId, (set = new Set()));
    set.add(follower);
    if (!this.timer) {
      this.timer = setInterval(() => {
        if (this.checking) return;
        const quiet = new Set<Follower>();
        for (const group of this.followers.values()) {
          for (const f of group) {
            if (this.expectedAtLastTick.get(f) === f.expected) quiet.add(f);
            this.expectedAtLastTick.set(f, f.expected);
          }
        }
        if (quiet.size > 0) void this.check((f) => quiet.has(f));
      }, this.idleMs);
      this.timer.unref();
    }
    return () => {
      this.expectedAtLastTick.delete(follower);
      if (!set.delete(follower) || set.size > 0) return;
      this.followers.delete(conversationId);
      if (this.followers.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the newest `seq` of the conversations with a follower `due`, and tells those behind. */
  private async check(due: (follower: Follower) => boolean): Promise<void> {
    const ids = [...this.followers].filter(([, set]) => [...set].some(due)).map(([id]) => id);
    if (ids.length === 0) return;
    this.checking = (async () => {
      try {
        const { rows } = await this.sql.query<{ id: number; lastSeq: number }>({
          name: 'conversations-last-seq',
          text: 'SELECT id, "lastSeq" FROM "Conversation" WHERE id = ANY($1::int[])',
          values: [ids],
        });
        this.failing = false;
        for (const { id, lastSeq } of rows) {
          for (const follower of this.followers.get(id) ?? []) if (lastSeq >= follower.expected) follower.behind(lastSeq);
        }
      } catch (err) {
        // The database is away: the next check tries again. Said once per outage.
        if (!this.failing) this.log.warn({ err }, 'live streams could not be compared with the database; retrying');
        this.failing = true;
      } finally {
        this.checking = undefined;
      }
    })();
    await this.checking;
    if (this.again) {
      this.again = false;
      await this.check(() => true);
    }
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Streams of conversations compared with the database when events may have been lost. */
    conversationWatch: ConversationWatch;
  }
}
