import { builder } from '../../schema/builder.ts';
import type { Context } from '../../schema/context.ts';
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
    username: t.string({ required: true, description: '3 to 32 characters of a-z, 0-9, _ and . (kept in lower case).' }),
    password: t.string({ required: true, description: '8 to 256 characters.' }),
    email: t.string({ description: 'Optional; private to you and admins. Signs in like the username.' }),
    phone: t.string({ description: 'Optional, in E.164 form (+14155550123); private. Signs in like the username.' }),
    displayName: t.string({ description: 'The name others see, 1 to 64 characters.' }),
    avatarUrl: t.string({ description: 'An http(s) URL of a picture kept elsewhere.' }),
    deviceId: t.string({ description: 'A stable id of this device; refresh tokens are bound to it.' }),
  }),
});

const LoginInput = builder.inputType('LoginInput', {
  fields: (t) => ({
    identifier: t.string({ required: true, description: 'Username, email or phone number.' }),
    password: t.string({ required: true, description: "The account's password." }),
    deviceId: t.string({ description: 'A stable id of this device; refresh tokens are bound to it.' }),
    sessionSeconds: t.int({ description: 'Access-token lifetime for a browser cookie session (at most REFRESH_TOKEN_TTL).' }),
  }),
});

const EmailLoginInput = builder.inputType('EmailLoginInput', {
  fields: (t) => ({
    email: t.string({ required: true, description: "The account's email address." }),
    password: t.string({ description: 'Required for accounts that have one, and to create one with a password.' }),
    name: t.string({ description: 'The display name of an account created by this sign-in.' }),
    avatarUrl: t.string({ description: 'An http(s) URL of a picture, for an account created by this sign-in.' }),
    deviceId: t.string({ description: 'A stable id of this device; refresh tokens are bound to it.' }),
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
    description: 'Creates an account and signs it in: send the accessToken as `Authorization: Bearer <token>`.',
    args: { input: t.arg({ type: RegisterInput, required: true, description: 'The new account; username and password are required.' }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, register(ctx, input)),
  }),
  login: t.field({
    type: AuthPayload,
    description: 'Signs in with a username, email or phone number and a password.',
    args: { input: t.arg({ type: LoginInput, required: true, description: 'Who is signing in, their password, and this device.' }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, login(ctx, input)),
  }),
  emailLogin: t.field({
    type: AuthPayload,
    description: 'Signs in by email, creating the account on first use; see AUTH_PASSWORDLESS_EMAIL_LOGIN.',
    args: { input: t.arg({ type: EmailLoginInput, required: true, description: 'The email, and the password when the account has one.' }) },
    resolve: (_root, { input }, ctx) => signedIn(ctx, emailLogin(ctx, input)),
  }),
  refreshToken: t.field({
    type: AuthPayload,
    description: 'Trades a refresh token for a new pair; each refresh token works once.',
    args: {
      refreshToken: t.arg.string({ required: true, description: 'The refresh token of the last pair; presenting a used one signs its device out.' }),
      deviceId: t.arg.string({ description: 'When given, it must be the deviceId the token was issued to.' }),
      sessionSeconds: t.arg.int({ description: 'Access-token lifetime, as in LoginInput.' }),
    },
    resolve: (_root, args, ctx) => signedIn(ctx, refresh(ctx, args.refreshToken, args.deviceId, args.sessionSeconds)),
  }),
  logout: t.withAuth({ signedIn: true }).boolean({
    description: 'Signs this device out: its tokens stop working and its sockets close.',
    resolve: (_root, _args, ctx) => logout(ctx, ctx.viewer),
  }),
}));
