import { builder } from '../../graphql/builder.ts';
import type { Context } from '../../graphql/context.ts';
import { UserRef } from '../users/schema.ts';
import { emailLogin, login, logout, refresh, register, type Session } from './service.ts';

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
    avatarUrl: t.string({ description: 'An http(s) URL of a picture kept elsewhere.' }),
    deviceId: t.string({ description: 'A stable id of this device; refresh tokens are bound to it.' }),
  }),
});

const LoginInput = builder.inputType('LoginInput', {
  fields: (t) => ({
    identifier: t.string({ required: true, description: 'Username, email or phone number.' }),
    password: t.string({ required: true }),
    deviceId: t.string(),
    sessionSeconds: t.int({ description: 'Access-token lifetime for a browser cookie session (at most REFRESH_TOKEN_TTL).' }),
  }),
});

const EmailLoginInput = builder.inputType('EmailLoginInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ description: 'Required for accounts that have one, and to create one with a password.' }),
    name: t.string({ description: 'The display name of an account created by this sign-in.' }),
    avatarUrl: t.string(),
    deviceId: t.string(),
    sessionSeconds: t.int({ description: 'Access-token lifetime, as in LoginInput.' }),
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
  emailLogin: t.field({
    type: AuthPayload,
    description: 'Signs in by email, creating the account on first use; see AUTH_PASSWORDLESS_EMAIL_LOGIN.',
    args: { input: t.arg({ type: EmailLoginInput, required: true }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, emailLogin(ctx, input)),
  }),
  refreshToken: t.field({
    type: AuthPayload,
    description: 'Trades a refresh token for a new pair; each refresh token works once.',
    args: { refreshToken: t.arg.string({ required: true }), deviceId: t.arg.string(), sessionSeconds: t.arg.int() },
    resolve: (_root, args, ctx) => signedIn(ctx, refresh(ctx, args.refreshToken, args.deviceId, args.sessionSeconds)),
  }),
  logout: t.boolean({
    description: 'Signs this device out: its tokens stop working and its sockets close.',
    authScopes: { signedIn: true },
    resolve: (_root, _args, ctx) => logout(ctx, ctx.viewer!),
  }),
}));
