import type { User } from '../../generated/prisma/client.ts';
import type { UserSnapshot } from '../../lib/events.ts';

/** A nullable date as events carry it. */
export const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function userSnapshot(user: User): UserSnapshot {
  return {
    id: user.id,
    username: user.username,
    displayName: user.displayName,
    avatarUrl: user.avatarUrl,
    bio: user.bio,
    website: user.website,
    isPrivate: user.isPrivate,
    status: user.status,
    lastSeenAt: iso(user.lastSeenAt),
    createdAt: user.createdAt.toISOString(),
  };
}

/** The outbox event of an account registered, changed, banned or unbanned: its public fields only. */
export function userEvent(type: 'user.registered' | 'user.updated' | 'user.banned' | 'user.unbanned', user: User) {
  return {
    type,
    topic: `user:${user.id}`,
    payload: {
      id: user.id,
      username: user.username,
      displayName: user.displayName,
      avatarUrl: user.avatarUrl,
      createdAt: user.createdAt.toISOString(),
      updatedAt: user.updatedAt.toISOString(),
    },
  };
}
