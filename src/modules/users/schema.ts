import type { User } from '../../generated/prisma/client.ts';
import { builder } from '../../schema/builder.ts';
import type { UserSnapshot } from '../../lib/events.ts';
import { loader, type Context } from '../../schema/context.ts';
import { notFound } from '../../lib/errors.ts';
import { deleteUser, ownAccountOrAdmin, searchUsersWhere, updateProfile } from './service.ts';

/** Email, phone, settings and role are shown only to the user themself and to admins. */
const ownerOrAdmin = (user: { id: number }, ctx: Context) => ctx.viewer?.id === user.id || ctx.viewer?.role === 'ADMIN';

/**
 * A private field of `user`, for those allowed to see it. Users that arrive in events carry
 * public fields only; the private ones are then read from the database.
 */
async function privateField<K extends 'email' | 'phone' | 'role' | 'settings'>(user: User, key: K, ctx: Context): Promise<User[K] | null> {
  if (!ownerOrAdmin(user, ctx)) return null;
  if (user[key] !== undefined) return user[key];
  const row = await ctx.db.user.findUnique({ where: { id: user.id }, select: { [key]: true } as Record<K, true> });
  return (row as Pick<User, K> | null)?.[key] ?? null;
}

/**
 * Email is private like the others, except for accounts known by their email (made by an
 * email sign-in), where it is the name others know them by.
 */
async function emailField(user: User, ctx: Context): Promise<string | null> {
  if (ownerOrAdmin(user, ctx)) return privateField(user, 'email', ctx);
  if (user.emailPublic === false) return null;
  if (user.emailPublic && user.email !== undefined) return user.email;
  const row = await loader(ctx, 'publicEmail', async (ids: readonly number[]) => {
    const rows = await ctx.db.user.findMany({ where: { id: { in: [...ids] } }, select: { id: true, email: true, emailPublic: true } });
    const byId = new Map(rows.map((r) => [r.id, r.emailPublic ? r.email : null]));
    return ids.map((id) => byId.get(id) ?? null);
  }).load(user.id);
  return row;
}

/** A user carried in an event, used where the schema expects a user row. */
export function asUser(snapshot: UserSnapshot): User {
  return snapshot as unknown as User;
}

export const Role = builder.enumType('Role', { values: ['USER', 'ADMIN'] as const });
export const UserStatus = builder.enumType('UserStatus', { values: ['ACTIVE', 'BANNED'] as const });

export const UserRef = builder.prismaObject('User', {
  fields: (t) => ({
    id: t.exposeID('id'),
    username: t.exposeString('username'),
    displayName: t.exposeString('displayName', { nullable: true }),
    avatarUrl: t.exposeString('avatarUrl', { nullable: true }),
    bio: t.exposeString('bio', { nullable: true }),
    website: t.exposeString('website', { nullable: true }),
    isPrivate: t.exposeBoolean('isPrivate'),
    status: t.expose('status', { type: UserStatus }),
    isOnline: t.boolean({
      resolve: (user, _args, ctx) => loader(ctx, 'isOnline', (ids: readonly number[]) => ctx.presence.isOnline([...ids])).load(user.id),
    }),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    email: t.string({ nullable: true, resolve: (u, _a, ctx) => emailField(u, ctx) }),
    phone: t.string({ nullable: true, resolve: (u, _a, ctx) => privateField(u, 'phone', ctx) }),
    role: t.field({ type: Role, nullable: true, resolve: (u, _a, ctx) => privateField(u, 'role', ctx) }),
    settings: t.field({ type: 'JSON', nullable: true, resolve: (u, _a, ctx) => privateField(u, 'settings', ctx) }),
  }),
});

builder.queryFields((t) => ({
  me: t.prismaField({
    type: 'User',
    nullable: true,
    description: 'The signed-in user, or null when the request carries no valid token.',
    resolve: (query, _root, _args, ctx) =>
      ctx.viewer ? ctx.db.user.findUnique({ ...query, where: { id: ctx.viewer.id } }) : null,
  }),
  user: t.withAuth({ signedIn: true }).prismaField({
    type: 'User',
    nullable: true,
    description: 'A user by id, username, or exact email address (public emails only, unless it is yours).',
    args: {
      id: t.arg.id({ description: 'The user id; or give username or email.' }),
      username: t.arg.string({ description: 'The username, in any case.' }),
      email: t.arg.string({ description: 'An exact email address.' }),
    },
    resolve: async (query, _root, { id, username, email }, ctx) => {
      const where = id
        ? { id: Number(id) }
        : username
          ? { username: username.trim().toLowerCase() }
          : email
            ? { email: email.trim().toLowerCase() }
            : null;
      if (!where || ('id' in where && !Number.isSafeInteger(where.id))) throw notFound('User');
      if ('email' in where) {
        // A private email finds nobody, so an address cannot be checked against accounts.
        const found = await ctx.db.user.findUnique({ where, select: { id: true, emailPublic: true } });
        if (!found || (!found.emailPublic && !ownerOrAdmin(found, ctx))) return null;
      }
      return ctx.db.user.findUnique({ ...query, where });
    },
  }),
  users: t.withAuth({ signedIn: true }).prismaConnection({
    type: 'User',
    cursor: 'id',
    description: 'The user directory by id, optionally filtered by a search.',
    defaultSize: 20,
    maxSize: 100,
    args: { search: t.arg.string({ description: 'Part of a username, display name or public email, in any case.' }) },
    totalCount: (_root, { search }, ctx) => ctx.db.user.count({ where: searchUsersWhere(search as string | null, ctx.viewer) }),
    resolve: (query, _root, { search }, ctx) =>
      ctx.db.user.findMany({ ...query, where: searchUsersWhere(search, ctx.viewer), orderBy: { id: 'asc' } }),
  }),
}));

const UpdateProfileInput = builder.inputType('UpdateProfileInput', {
  fields: (t) => ({
    username: t.string({ description: 'A new username, with the same rules as at sign-up.' }),
    email: t.string({ description: 'A new email address, or null to remove it.' }),
    displayName: t.string({ description: 'The name others see, 1 to 64 characters; null clears it.' }),
    bio: t.string({ description: 'Up to 500 characters; null clears it.' }),
    website: t.string({ description: 'An http(s) URL; null clears it.' }),
    avatarUrl: t.string({ description: 'An http(s) URL of a picture kept elsewhere (or use uploadAvatar); null clears it.' }),
    isPrivate: t.boolean({ description: 'Whether your profile is private.' }),
    settings: t.field({ type: 'JSON', description: 'A JSON object merged key by key into your settings (16 KB at most).' }),
  }),
});

builder.mutationFields((t) => ({
  updateProfile: t.withAuth({ signedIn: true }).prismaField({
    type: 'User',
    description: "Changes the viewer's profile, or (admins) the profile of userId.",
    args: {
      input: t.arg({ type: UpdateProfileInput, required: true, description: 'The fields to change: those left out stay as they are.' }),
      userId: t.arg.id({ description: 'Admins: whose profile; your own when not given.' }),
    },
    resolve: (query, _root, { input, userId }, ctx) => updateProfile(ctx, ownAccountOrAdmin(ctx.viewer, userId), input, query),
  }),
  deleteUser: t.withAuth({ signedIn: true }).id({
    description: 'Deletes an account (your own, or any as an admin): its sessions end, its messages stay without a sender.',
    args: { id: t.arg.id({ required: true, description: 'The account; your own id unless you are an admin.' }) },
    resolve: async (_root, { id }, ctx) => String(await deleteUser(ctx, ownAccountOrAdmin(ctx.viewer, id))),
  }),
}));
