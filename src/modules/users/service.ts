import type { Prisma } from '../../generated/prisma/client.ts';
import type { Services, Viewer } from '../../graphql/context.ts';
import { parseInput } from '../../lib/validation.ts';
import { profileRules } from './rules.ts';

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
  for (const key of ['displayName', 'bio', 'website', 'avatarUrl'] as const) {
    if (data[key] !== undefined) update[key] = data[key] || null;
  }
  if (data.isPrivate != null) update.isPrivate = data.isPrivate;
  if (data.settings) {
    const current = await services.db.user.findUniqueOrThrow({ where: { id: userId }, select: { settings: true } });
    update.settings = { ...(current.settings as object), ...data.settings } as Prisma.InputJsonObject;
  }
  return services.db.user.update({ ...(query as object), where: { id: userId }, data: update });
}
