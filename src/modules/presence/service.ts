import { randomUUID } from 'node:crypto';
import type { Db } from '../../lib/db.ts';
import { topics, type EventBus } from '../../lib/events.ts';
import type { Logger } from '../../lib/logger.ts';
import type { PresenceStore } from '../../lib/presence-store.ts';

/**
 * A user is online while at least one of their connections (on any instance) is open. This
 * instance keeps its own connections' entries alive and sweeps lapsed ones, including those of
 * instances that died; the first to notice a transition publishes it.
 */
export class PresenceService {
  private readonly local = new Map<string, number>();
  private readonly pending = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  // Transitions of one user are published in the order they happened on this instance.
  private readonly chains = new Map<number, Promise<void>>();

  constructor(
    private readonly store: PresenceStore,
    private readonly bus: EventBus,
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(500, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Counts one open connection of `userId`; the returned function un-counts it (once). */
  async connect(userId: number): Promise<() => Promise<void>> {
    const connectionId = randomUUID();
    this.local.set(connectionId, userId);
    if (await this.store.add(userId, connectionId, Date.now() + this.ttlMs)) {
      this.enqueue(userId, () => this.announce(userId, true, null));
    }
    return () => this.disconnect(connectionId);
  }

  private disconnect(connectionId: string): Promise<void> {
    const userId = this.local.get(connectionId);
    if (userId === undefined) return Promise.resolve();
    this.local.delete(connectionId);
    const done = (async () => {
      if (await this.store.remove(userId, connectionId, Date.now())) await this.wentOffline(userId);
    })();
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
    return done;
  }

  async isOnline(userIds: number[]): Promise<boolean[]> {
    return this.store.online(userIds, Date.now());
  }

  /** Releases this instance's connections (their users go offline) and waits for it. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.local.keys()].map((id) => this.disconnect(id)));
    await Promise.all(this.pending);
  }

  private async tick(): Promise<void> {
    try {
      const entries = [...this.local].map(([connectionId, userId]) => ({ connectionId, userId }));
      await this.store.refresh(entries, Date.now() + this.ttlMs);
      for (const userId of await this.store.sweep(Date.now())) await this.wentOffline(userId);
    } catch (err) {
      this.log.warn({ err }, 'presence heartbeat failed');
    }
  }

  private wentOffline(userId: number): Promise<void> {
    return this.enqueue(userId, async () => {
      const lastSeenAt = new Date();
      await this.db.user.update({ where: { id: userId }, data: { lastSeenAt } }).catch(() => {});
      await this.announce(userId, false, lastSeenAt.toISOString());
    });
  }

  private announce(userId: number, isOnline: boolean, lastSeenAt: string | null): Promise<void> {
    return this.bus.publish(topics.presence(userId), { type: 'presence', userId, isOnline, lastSeenAt });
  }

  private enqueue(userId: number, step: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(userId) ?? Promise.resolve())
      .then(step)
      .catch((err) => this.log.warn({ err, userId }, 'presence update failed'));
    this.chains.set(userId, next);
    void next.finally(() => this.chains.get(userId) === next && this.chains.delete(userId));
    return next;
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Who is online, on every instance. */
    presence: PresenceService;
  }
}
