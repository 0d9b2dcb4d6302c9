import { builder } from '../../schema/builder.ts';
import { setBanned } from './service.ts';

builder.mutationFields((t) => ({
  banUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    description: 'Admins: bans a user. They can no longer sign in, their sessions end and their sockets close.',
    args: { id: t.arg.id({ required: true, description: 'The user to ban (not an admin, not yourself).' }) },
    resolve: (_query, _root, { id }, ctx) => setBanned(ctx, ctx.viewer, Number(id), true),
  }),
  unbanUser: t.withAuth({ admin: true }).prismaField({
    type: 'User',
    description: 'Admins: lifts a ban; the user can sign in again.',
    args: { id: t.arg.id({ required: true, description: 'The banned user.' }) },
    resolve: (_query, _root, { id }, ctx) => setBanned(ctx, ctx.viewer, Number(id), false),
  }),
}));
