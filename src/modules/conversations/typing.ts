import { topics, type EventBus, type UserSnapshot } from '../../lib/events.ts';

/** Typing stops by itself when a client stops refreshing it for this long. */
export const TYPING_TIMEOUT_MS = 6000;

/**
 * Who is typing where, on this instance. A client says "typing" every few seconds while the
 * user types; if the refreshes stop (closed tab, lost network), the stop is announced for it.
 */
export class TypingTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly bus: EventBus) {}

  async set(conversationId: number, user: UserSnapshot, isTyping: boolean): Promise<void> {
    const key = `${conversationId}:${user.id}`;
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    if (isTyping) {
      const timer = setTimeout(() => {
        this.timers.delete(key);
        void this.announce(conversationId, user, false);
      }, TYPING_TIMEOUT_MS);
      timer.unref();
      this.timers.set(key, timer);
    }
    await this.announce(conversationId, user, isTyping);
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
