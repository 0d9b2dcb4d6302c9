import { LRUCache } from 'lru-cache';
import type { User } from '../../generated/prisma/client.ts';
import type { Services } from '../../services/services.ts';
import { topics, type BusEvent } from '../../lib/events.ts';

/** What an access token stands for: its user's row, and whether its device was signed out. */
export type SessionRow = User & { deviceRevokedAt: Date | null };

type SessionChange = Extract<BusEvent, { type: 'deviceRevoked' | 'userBanned' | 'userChanged' }>;

/**
 * Remembers the device and user rows behind access tokens, so a request or subscription does
 * not read them again for every operation (a database round trip costs more than the rest of
 * a small operation). Whatever would make an entry wrong (a sign-out, a ban, a profile change)
 * is a control event: the instance that makes the change drops the entries before it answers
 * (`announceSessionChange`), the others when the event reaches them, milliseconds later.
 * Entries also expire after a minute, in case an event is lost to a pub/sub reconnect.
 */
export class SessionCache {
  private readonly rows = new LRUCache<number, SessionRow>({ max: 100_000, ttl: 60_000 });
  /** Moves on with every change, so a read that overlapped one is not kept. */
  private epoch = 0;

  /** The row for `deviceId`: remembered, or read with `read` and remembered. */
  async lookup(deviceId: number, read: () => Promise<SessionRow | undefined>): Promise<SessionRow | undefined> {
    const known = this.rows.get(deviceId);
    if (known) return known;
    const epoch = this.epoch;
    const row = await read();
    if (row && epoch === this.epoch) this.rows.set(deviceId, row);
    return row;
  }

  /** Drops what `event` makes stale; other events are ignored. */
  forget(event: BusEvent): void {
    if (event.type === 'deviceRevoked') {
      this.rows.delete(event.deviceId);
    } else if (event.type === 'userBanned' || event.type === 'userChanged') {
      for (const [deviceId, row] of this.rows.entries()) if (row.id === event.userId) this.rows.delete(deviceId);
    } else {
      return;
    }
    this.epoch++;
  }
}

/** Tells every instance that sessions ended or a user changed; this instance acts on it first. */
export async function announceSessionChange(services: Services, event: SessionChange): Promise<void> {
  services.sessions.forget(event);
  await services.bus.publish(topics.control(), event);
}

declare module '../../services/services.ts' {
  interface Services {
    /** The device and user rows behind access tokens, kept between operations. */
    sessions: SessionCache;
  }
}
