import type { Services } from '../../services/services.ts';
import type { Viewer } from '../viewer/viewer.ts';
import { forbidden, notFound } from '../../lib/errors.ts';
import { announceSessionChange } from '../viewer/sessions.ts';
import { recordEvent } from '../outbox/outbox.ts';
import { userEvent } from '../users/snapshot.ts';

/** Bans a user: they cannot sign in, their sessions end and their sockets are closed. */
export async function setBanned(services: Services, admin: Viewer, userId: number, banned: boolean) {
  const target = await services.db.user.findUnique({ where: { id: userId }, select: { id: true, role: true } });
  if (!target) throw notFound('User');
  if (target.role === 'ADMIN') throw forbidden('Administrators cannot be banned');
  if (target.id === admin.id) throw forbidden('You cannot ban yourself');
  const user = await services.db.$transaction(async (tx) => {
    const changed = await tx.user.update({ where: { id: userId }, data: { status: banned ? 'BANNED' : 'ACTIVE' } });
    await recordEvent(tx, userEvent(banned ? 'user.banned' : 'user.unbanned', changed));
    return changed;
  });
  services.outbox.kick();
  if (banned) {
    const now = new Date();
    await services.db.$transaction([
      services.db.device.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } }),
      services.db.refreshToken.updateMany({ where: { device: { userId }, revokedAt: null }, data: { revokedAt: now } }),
    ]);
    await announceSessionChange(services, { type: 'userBanned', userId });
  } else {
    await announceSessionChange(services, { type: 'userChanged', userId });
  }
  return user;
}
