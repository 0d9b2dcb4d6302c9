import type { Prisma } from '../../generated/prisma/client.ts';
import { userEvent } from './snapshot.ts';
import { recordEvent } from '../outbox/outbox.ts';
import type { Services } from '../../services/services.ts';
import type { Viewer } from '../viewer/viewer.ts';
import { conflict, forbidden, notFound } from '../../lib/errors.ts';
import { announceSessionChange } from '../viewer/sessions.ts';
import { parseInput, uniqueViolation } from '../../lib/validation.ts';
import { profileRules } from './rules.ts';

/** The account an operation on `userId` may touch: the viewer's own, or any for an admin. */
export function ownAccountOrAdmin(viewer: Viewer, userId?: string | null): number {
  if (userId == null || userId === String(viewer.id)) return viewer.id;
  if (viewer.role !== 'ADMIN') throw forbidden('You can only change your own account');
  const id = Number(userId);
  if (!Number.isSafeInteger(id)) throw notFound('User');
  return id;
}

/** Who a user search may return: banned accounts only to admins. */
export function searchUsersWhere(search: string | null | undefined, viewer: Viewer | null): Prisma.UserWhereInput {
  const term = search?.trim();
  return {
    ...(viewer?.role === 'ADMIN' ? {} : { status: 'ACTIVE' }),
    ...(term
      ? {
          OR: [
            { username: { contains: term, mode: 'insensitive' } },
            { displayName: { contains: term, mode: 'insensitive' } },
            { email: { contains: term, mode: 'insensitive' }, emailPublic: true },
          ],
        }
      : {}),
  };
}

/**
 * Changes the given profile fields; a field sent as null is cleared, a field left out is kept.
 * `settings` is merged key by key, so clients can own separate keys without overwriting each other.
 */
export async function updateProfile<Q extends { select?: unknown; include?: unknown }>(
  services: Services,
  userId: number,
  input: unknown,
  query: Q,
) {
  const data = parseInput(profileRules, input);
  const update: Prisma.UserUpdateInput = {};
  if (data.username) update.username = data.username;
  if (data.email !== undefined) update.email = data.email;
  for (const key of ['displayName', 'bio', 'website', 'avatarUrl'] as const) {
    if (data[key] !== undefined) update[key] = data[key] || null;
  }
  if (data.isPrivate != null) update.isPrivate = data.isPrivate;
  if (data.settings) {
    const current = await services.db.user.findUniqueOrThrow({ where: { id: userId }, select: { settings: true } });
    update.settings = { ...(current.settings as object), ...data.settings } as Prisma.InputJsonObject;
  }
  try {
    await services.db.$transaction(async (tx) => {
      const user = await tx.user.update({ where: { id: userId }, data: update });
      await recordEvent(tx, userEvent('user.updated', user));
    });
    services.outbox.kick();
    await announceSessionChange(services, { type: 'userChanged', userId });
    // Read after the transaction: the selection may include relations, which Prisma reads at
    // once, and inside a transaction that is two statements on one connection.
    return services.db.user.findUniqueOrThrow({ ...(query as object), where: { id: userId } });
  } catch (err) {
    const fields = uniqueViolation(err);
    const field = fields && (['username', 'email'] as const).find((f) => fields.includes(f));
    if (field) throw conflict(field, `This ${field} is already taken`);
    if ((err as { code?: string }).code === 'P2025') throw notFound('User');
    throw err;
  }
}

/**
 * Deletes an account. Its devices go with it (so its tokens stop working) and its open
 * sockets are closed; its messages stay in their conversations without a sender.
 */
export async function deleteUser(services: Services, userId: number): Promise<number> {
  const devices = await services.db.device.findMany({ where: { userId }, select: { id: true } });
  const deleted = await services.db.$transaction(async (tx) => {
    const { count } = await tx.user.deleteMany({ where: { id: userId } });
    if (count === 1) await recordEvent(tx, { type: 'user.deleted', topic: `user:${userId}`, payload: { id: userId } });
    return count;
  });
  if (deleted === 0) throw notFound('User');
  services.outbox.kick();
  for (const device of devices) await announceSessionChange(services, { type: 'deviceRevoked', userId, deviceId: device.id });
  // Also a device signed in between the two statements above: nothing of the user is kept.
  await announceSessionChange(services, { type: 'userChanged', userId });
  return userId;
}
