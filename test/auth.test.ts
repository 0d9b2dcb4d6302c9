import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, gql, signUp } from './helpers/clients.ts';
import { BanUser, Login, Me, Register } from './helpers/operations.ts';
import { startServer, TEST_JWT_SECRET, uniqueName, type TestServer } from './helpers/server.ts';
import { LoginThrottle } from '../src/modules/auth/throttle.ts';
import { addressKey } from '../src/lib/client-address.ts';

const Refresh = graphql(`
  mutation Refresh($refreshToken: String!, $deviceId: String) {
    refreshToken(refreshToken: $refreshToken, deviceId: $deviceId) {
      accessToken
      refreshToken
      user {
        id
      }
    }
  }
`);

const Logout = graphql(`
  mutation Logout {
    logout
  }
`);

let server: TestServer;
const admin = { username: uniqueName('admin'), password: 'admin password 1' };

beforeAll(async () => {
  server = await startServer({
    ADMIN_USERNAME: admin.username,
    ADMIN_PASSWORD: admin.password,
    LOGIN_MAX_FAILURES: '3',
    LOGIN_LOCK_SECONDS: '600',
    // So each test can sign in from an address of its own (X-Forwarded-For), as clients behind a proxy do.
    TRUST_PROXY: 'true',
  });
});
afterAll(() => server?.stop());

describe('register', () => {
  it('creates the user and returns working tokens', async () => {
    const username = uniqueName('Alice');
    const email = `${username}@Example.com`;
    const result = await gql(server, Register, {
      input: { username, password: 'long enough', email, phone: '+14155550100'.slice(0, 6) + String(Date.now()).slice(-6), displayName: 'Alice' },
    });
    expect(result.errors).toBeUndefined();
    const { user, accessToken } = result.data!.register;
    expect(user.username).toBe(username.toLowerCase());
    expect(user.email).toBe(email.toLowerCase());
    expect(user.role).toBe('USER');
    const me = await gql(server, Me, undefined, accessToken);
    expect(me.data?.me?.id).toBe(user.id);
    expect(me.data?.me?.displayName).toBe('Alice');
  });

  it.each([
    ['username', { username: 'ab' }],
    ['username', { username: 'has space' }],
    ['username', { username: 'x'.repeat(33) }],
    ['password', { password: 'short' }],
    ['email', { email: 'not-an-email' }],
    ['phone', { phone: '0123456' }],
  ])('refuses a bad %s with BAD_USER_INPUT naming it', async (field, bad) => {
    const result = await gql(server, Register, {
      input: { username: uniqueName(), password: 'long enough', ...bad },
    });
    expect(code(result)).toBe('BAD_USER_INPUT');
    expect(Object.keys(result.errors![0].extensions!.fields!)).toEqual([field]);
    expect(result.data).toBeNull();
  });

  it.each(['username', 'email', 'phone'] as const)('refuses a taken %s with CONFLICT naming it', async (field) => {
    const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const first = await signUp(server, { email: `${uniqueName()}@example.com`, phone });
    const values = { username: first.username, email: `${uniqueName()}@example.com`, phone: `+1${Date.now()}`.slice(0, 12) };
    if (field === 'email') values.email = (await gql(server, Me, undefined, first.accessToken)).data!.me!.email!;
    if (field === 'phone') values.phone = phone;
    const result = await gql(server, Register, {
      input: { username: field === 'username' ? first.username : uniqueName(), password: 'long enough', email: values.email, phone: field === 'phone' ? phone : undefined },
    });
    expect(code(result)).toBe('CONFLICT');
    expect(result.errors![0].extensions!.field).toBe(field);
  });

  it('lets exactly one of two simultaneous registrations of a name win', async () => {
    const username = uniqueName();
    const results = await Promise.all(
      [1, 2, 3].map(() => gql(server, Register, { input: { username, password: 'long enough' } })),
    );
    expect(results.filter((r) => r.data?.register).length).toBe(1);
    expect(results.filter((r) => code(r) === 'CONFLICT').length).toBe(2);
  });
});

describe('login', () => {
  it('accepts username, email or phone as the identifier', async () => {
    const email = `${uniqueName()}@example.com`;
    const phone = `+4420${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const user = await signUp(server, { email, phone });
    for (const identifier of [user.username, email.toUpperCase(), phone]) {
      const result = await gql(server, Login, { input: { identifier, password: user.password } });
      expect(result.errors).toBeUndefined();
      expect(result.data!.login.user.id).toBe(user.id);
    }
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    const user = await signUp(server);
    const wrong = await gql(server, Login, { input: { identifier: user.username, password: 'nope nope' } });
    const unknown = await gql(server, Login, { input: { identifier: uniqueName(), password: 'nope nope' } });
    expect(code(wrong)).toBe('UNAUTHENTICATED');
    expect(code(unknown)).toBe('UNAUTHENTICATED');
    expect(wrong.errors![0].message).toBe(unknown.errors![0].message);
  });

  it('locks the account from that address after repeated failures, even for the right password', async () => {
    const user = await signUp(server);
    const from = { 'x-forwarded-for': '203.0.113.10' };
    for (let i = 0; i < 3; i++) {
      expect(code(await gql(server, Login, { input: { identifier: user.username, password: 'wrong guess' } }, undefined, from))).toBe('UNAUTHENTICATED');
    }
    const locked = await gql(server, Login, { input: { identifier: user.username, password: user.password } }, undefined, from);
    expect(code(locked)).toBe('RATE_LIMITED');
    expect(locked.errors![0].message).toMatch(/locked/i);
    expect(locked.errors![0].extensions!.retryAfter).toBeGreaterThan(500);
  });

  it("does not let a stranger's failures lock the owner out of their own address", async () => {
    const user = await signUp(server);
    const stranger = { 'x-forwarded-for': '198.51.100.7' };
    for (let i = 0; i < 4; i++) await gql(server, Login, { input: { identifier: user.username, password: 'guess guess' } }, undefined, stranger);
    expect(code(await gql(server, Login, { input: { identifier: user.username, password: user.password } }, undefined, stranger))).toBe('RATE_LIMITED');
    const owner = await gql(server, Login, { input: { identifier: user.username, password: user.password } }, undefined, { 'x-forwarded-for': '192.0.2.44' });
    expect(owner.errors).toBeUndefined();
    expect(owner.data!.login.user.id).toBe(user.id);
  });

  it('answers an unknown name exactly as an existing account, before and after the limit', async () => {
    const user = await signUp(server);
    const from = { 'x-forwarded-for': '203.0.113.99' };
    const attempts = async (identifier: string) => {
      const answers = [];
      for (let i = 0; i < 5; i++) {
        const result = await gql(server, Login, { input: { identifier, password: 'guess guess' } }, undefined, from);
        const { message, extensions } = result.errors![0];
        answers.push({ message, code: extensions!.code, reason: extensions!.reason ?? null });
      }
      return answers;
    };
    const existing = await attempts(user.username);
    const unknown = await attempts(uniqueName());
    expect(unknown).toEqual(existing);
    expect(existing.map((a) => a.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('locks for twice as long after each further lock', async () => {
    // One second, then two: the throttle the app uses (Redis when set), with short locks.
    const throttle = new LoginThrottle(server.app.services.bus.redisClient, 2, 1);
    const key = LoginThrottle.key(uniqueName(), '203.0.113.123');
    const fail = async () => {
      const attempt = await throttle.begin(key);
      if (attempt.allowed) await throttle.failed(key, attempt.round);
    };
    await fail();
    expect(await throttle.lockedFor(key)).toBe(0);
    await fail();
    expect(await throttle.lockedFor(key)).toBe(1);
    while ((await throttle.lockedFor(key)) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    await fail();
    await fail();
    expect(await throttle.lockedFor(key)).toBe(2);
  });

  it('checks at most the allowed number of passwords when guesses arrive at once', async () => {
    const user = await signUp(server);
    const from = { 'x-forwarded-for': '198.51.100.200' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => gql(server, Login, { input: { identifier: user.username, password: 'guess guess' } }, undefined, from)),
    );
    const codes = answers.map((a) => a.errors![0].extensions!.code);
    expect(codes.filter((c) => c === 'UNAUTHENTICATED').length).toBeLessThanOrEqual(3);
    expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(17);
  });

  it('counts each form of a name on its own, so failures do not tell which email is whose', async () => {
    const email = `${uniqueName()}@example.com`;
    const user = await signUp(server, { email });
    const from = { 'x-forwarded-for': '198.51.100.201' };
    const tries = async (names: string[]) => {
      const codes = [];
      for (const identifier of names) codes.push((await gql(server, Login, { input: { identifier, password: 'guess guess' } }, undefined, from)).errors![0].extensions!.code);
      return codes;
    };
    const linked = await tries([user.username, user.username, email, email, user.username]);
    const unlinked = await tries([uniqueName(), uniqueName(), `${uniqueName()}@example.com`, `${uniqueName()}@example.com`, uniqueName()]);
    expect(linked).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect(unlinked).toEqual(linked);
  });

  it('refuses names and passwords longer than any kept, before looking anything up', async () => {
    const long = await gql(server, Login, { input: { identifier: 'x'.repeat(100_000), password: 'whatever' } });
    expect(long.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', fields: { identifier: expect.any(String) } });
    const longPassword = await gql(server, Login, { input: { identifier: 'someone', password: 'x'.repeat(2000) } });
    expect(longPassword.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', fields: { password: expect.any(String) } });
  });

  it('counts an IPv6 client by its /64 network', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
  });

  it('has the configured admin account, which can ban; a banned user cannot log in', async () => {
    const adminLogin = await gql(server, Login, { input: { identifier: admin.username, password: admin.password } });
    expect(adminLogin.errors).toBeUndefined();
    const adminToken = adminLogin.data!.login.accessToken;
    expect((await gql(server, Me, undefined, adminToken)).data!.me!.role).toBe('ADMIN');

    const user = await signUp(server);
    const notAdmin = await gql(server, BanUser, { id: user.id }, user.accessToken);
    expect(code(notAdmin)).toBe('FORBIDDEN');

    const banned = await gql(server, BanUser, { id: user.id }, adminToken);
    expect(banned.data!.banUser.status).toBe('BANNED');
    const login = await gql(server, Login, { input: { identifier: user.username, password: user.password } });
    expect(code(login)).toBe('FORBIDDEN');
    expect(login.errors![0].message).toMatch(/banned/i);
    // Tokens issued before the ban stop working too.
    const me = await gql(server, Me, undefined, user.accessToken);
    expect(me.data!.me).toBeNull();
    expect(code(await gql(server, Refresh, { refreshToken: user.refreshToken }))).toBe('UNAUTHENTICATED');
  });
});

describe('tokens', () => {
  it('rotates the refresh token on every use', async () => {
    const user = await signUp(server, { deviceId: 'phone-1' });
    const first = await gql(server, Refresh, { refreshToken: user.refreshToken, deviceId: 'phone-1' });
    expect(first.errors).toBeUndefined();
    const second = await gql(server, Refresh, { refreshToken: first.data!.refreshToken.refreshToken, deviceId: 'phone-1' });
    expect(second.errors).toBeUndefined();
    expect(second.data!.refreshToken.refreshToken).not.toBe(first.data!.refreshToken.refreshToken);
    const me = await gql(server, Me, undefined, second.data!.refreshToken.accessToken);
    expect(me.data!.me!.id).toBe(user.id);
  });

  it('revokes the device when an old refresh token is reused', async () => {
    const user = await signUp(server, { deviceId: 'laptop' });
    const other = await gql(server, Login, { input: { identifier: user.username, password: user.password, deviceId: 'tablet' } });
    const rotated = await gql(server, Refresh, { refreshToken: user.refreshToken });
    const newPair = rotated.data!.refreshToken;

    const reuse = await gql(server, Refresh, { refreshToken: user.refreshToken });
    expect(code(reuse)).toBe('UNAUTHENTICATED');
    expect(reuse.errors![0].message).toMatch(/reuse/i);
    // The thief's and the owner's current tokens of that device are both dead now...
    expect(code(await gql(server, Refresh, { refreshToken: newPair.refreshToken }))).toBe('UNAUTHENTICATED');
    expect((await gql(server, Me, undefined, newPair.accessToken)).data!.me).toBeNull();
    // ...while the user's other device is untouched.
    expect((await gql(server, Me, undefined, other.data!.login.accessToken)).data!.me!.id).toBe(user.id);
  });

  it('refuses a refresh token presented for another device', async () => {
    const user = await signUp(server, { deviceId: 'device-a' });
    expect(code(await gql(server, Refresh, { refreshToken: user.refreshToken, deviceId: 'device-b' }))).toBe('UNAUTHENTICATED');
  });

  it('logout ends the session of that device', async () => {
    const user = await signUp(server);
    expect((await gql(server, Logout, undefined, user.accessToken)).data!.logout).toBe(true);
    expect((await gql(server, Me, undefined, user.accessToken)).data!.me).toBeNull();
    expect(code(await gql(server, Refresh, { refreshToken: user.refreshToken }))).toBe('UNAUTHENTICATED');
    expect(code(await gql(server, Logout, undefined, user.accessToken))).toBe('UNAUTHENTICATED');
  });

  it('rejects forged and expired access tokens with a message saying which', async () => {
    const user = await signUp(server);
    const claims = jwt.decode(user.accessToken) as { sub: string; sid: number; role: string };
    const forged = jwt.sign({ sub: claims.sub, sid: claims.sid, role: 'ADMIN' }, 'some-other-secret-0123456789');
    const expired = jwt.sign({ sub: claims.sub, sid: claims.sid, role: 'USER', exp: Math.floor(Date.now() / 1000) - 10 }, TEST_JWT_SECRET);
    const tampered = user.accessToken.slice(0, -3) + (user.accessToken.endsWith('AAA') ? 'BBB' : 'AAA');

    for (const [token, message] of [[forged, /invalid/i], [tampered, /invalid/i], [expired, /expired/i]] as const) {
      const logout = await gql(server, Logout, undefined, token);
      expect(code(logout)).toBe('UNAUTHENTICATED');
      expect(logout.errors![0].message).toMatch(message);
      expect((await gql(server, Me, undefined, token)).data!.me).toBeNull();
    }
  });

  it('answers a request without a token as anonymous, and refuses protected fields', async () => {
    expect((await gql(server, Me)).data!.me).toBeNull();
    expect(code(await gql(server, Logout))).toBe('UNAUTHENTICATED');
  });
});
