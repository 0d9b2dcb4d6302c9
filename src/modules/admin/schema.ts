import { builder } from '../../graphql/builder.ts';
import { setBanned } from './service.ts';

builder.mutationFields((t) => ({
  banUser: t.prismaField({
    type: 'User',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_query, _root, { id }, ctx) => setBanned(ctx, ctx.viewer!, Number(id), true),
  }),
  unbanUser: t.prismaField({
    type: 'User',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_query, _root, { id }, ctx) => setBanned(ctx, ctx.viewer!, Number(id), false),
  }),
}));
