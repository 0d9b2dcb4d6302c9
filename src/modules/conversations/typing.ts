import { randomUUID } from 'node:crypto';
import { topics, type EventBus, type UserSnapshot } from '../../lib/events.ts';

/** Typing stops by itself when a client stops refreshing it for this long. */
export const TYPING_TIMEOUT_MS = 6000;

/** Deletes the key only if it still holds this refresh's mark: one instance's stop never undoes another's refresh. */
const DELETE_IF_MINE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Who is typing where. A client says "typing" every few seconds while the user types; if the
 * refreshes stop (closed tab, lost network), the stop is announced for it.
 *
 * Each instance times the refreshes it received. With instances sharing Redis, a client's
 * refreshes may reach different instances (a reconnect, a load balancer without affinity), so
 * the latest refresh of each user and conversation is marked in Redis: when an instance's
 * timer runs out, it announces the stop only if the mark is still its own, and otherwise
 * leaves it to the instance that had the later refresh.
 */
export class TypingTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly instance = randomUUID();
  private marks = 0;

  constructor(private readonly bus: EventBus) {}

  async set(conversationId: number, user: UserSnapshot, isTyping: boolean): Promise<void> {
    const key = `${conversationId}:${user.id}`;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    const redis = this.bus.redisClient;
    if (isTyping) {
      const mark = `${this.instance}:${++this.marks}`;
      // Kept past the timeout, so that the timer that runs out still finds its own mark.
      await redis?.set(`typing:${key}`, mark, 'PX', TYPING_TIMEOUT_MS * 2);
      const timer = setTimeout(() => {
        this.timers.delete(key);
        void this.expire(conversationId, user, mark);
      }, TYPING_TIMEOUT_MS);
      timer.unref();
      this.timers.set(key, timer);
    } else {
      await redis?.del(`typing:${key}`);
    }
    await this.announce(conversationId, user, isTyping);
  }

  /** This instance's timer ran out: the stop is announced unless another instance had a later refresh. */
  private async expire(conversationId: number, user: UserSnapshot, mark: string): Promise<void> {
    const redis = this.bus.redisClient;
    // Redis away: better a stop announced early than a user shown typing for ever.
    const mine = redis ? await redis.eval(DELETE_IF_MINE, 1, `typing:${conversationId}:${user.id}`, mark).then(Boolean, () => true) : true;
    if (mine) await this.announce(conversationId, user, false).catch(() => {});
  }

  /** A message sent ends its sender's typing. */
  async stopIfTyping(conversationId: number, user: UserSnapshot): Promise<void> {
    if (this.timers.has(`${conversationId}:${user.id}`)) await this.set(conversationId, user, false);
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private announce(conversationId: number, user: UserSnapshot, isTyping: boolean) {
    return this.bus.publish(topics.conversation(conversationId), { type: 'typing', conversationId, user, isTyping });
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Typing that stops by itself. */
    typing: TypingTimers;
  }
}
