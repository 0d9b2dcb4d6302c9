import { builder } from '../../graphql/builder.ts';
import type { Context } from '../../graphql/context.ts';
import { UserRef } from '../users/schema.ts';
import { login, logout, refresh, register, type Session } from './service.ts';

const AuthPayload = builder.objectRef<Session>('AuthPayload').implement({
  fields: (t) => ({
    accessToken: t.exposeString('accessToken'),
    refreshToken: t.exposeString('refreshToken'),
    user: t.field({ type: UserRef, resolve: (session) => session.user }),
  }),
});

const RegisterInput = builder.inputType('RegisterInput', {
  fields: (t) => ({
    username: t.string({ required: true }),
    password: t.string({ required: true }),
    email: t.string(),
    phone: t.string(),
    displayName: t.string(),
    deviceId: t.string({ description: 'A stable id of this device; refresh tokens are bound to it.' }),
  }),
});

const LoginInput = builder.inputType('LoginInput', {
  fields: (t) => ({
    identifier: t.string({ required: true, description: 'Username, email or phone number.' }),
    password: t.string({ required: true }),
    deviceId: t.string(),
  }),
});

/** The rest of a signing-in operation sees the new session, so `user { email }` resolves. */
async function signedIn(ctx: Context, session: Promise<Session>): Promise<Session> {
  const result = await session;
  ctx.viewer = result.viewer;
  ctx.authProblem = null;
  return result;
}

builder.mutationFields((t) => ({
  register: t.field({
    type: AuthPayload,
    args: { input: t.arg({ type: RegisterInput, required: true }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, register(ctx, input)),
  }),
  login: t.field({
    type: AuthPayload,
    args: { input: t.arg({ type: LoginInput, required: true }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, login(ctx, input)),
  }),
  refreshToken: t.field({
    type: AuthPayload,
    description: 'Trades a refresh token for a new pair; each refresh token works once.',
    args: { refreshToken: t.arg.string({ required: true }), deviceId: t.arg.string() },
    resolve: (_root, args, ctx) => signedIn(ctx, refresh(ctx, args.refreshToken, args.deviceId)),
  }),
  logout: t.boolean({
    description: 'Signs this device out: its tokens stop working and its sockets close.',
    authScopes: { signedIn: true },
    resolve: (_root, _args, ctx) => logout(ctx, ctx.viewer!),
  }),
}));
