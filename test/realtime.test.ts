import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type SignedUp } from './helpers/clients.ts';
import { BanUser, Login, Me, Presence } from './helpers/operations.ts';
import { startServer, TEST_JWT_SECRET, uniqueName, type TestServer } from './helpers/server.ts';

const IsOnline = graphql(`
  query IsOnline($id: ID!) {
    user(id: $id) {
      isOnline
      lastSeenAt
    }
  }
`);

const LogoutOverHttp = graphql(`
  mutation LogoutOverHttp {
    logout
  }
`);

let server: TestServer;
const admin = { username: uniqueName('admin'), password: 'admin password 1' };

beforeAll(async () => {
  server = await startServer({ ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password });
});
afterAll(() => server?.stop());

describe('graphql-ws', () => {
  it('authenticates from connection_init and runs queries and mutations', async () => {
    const user = await signUp(server);
    const ws = connectWs(server, user.accessToken);
    const result = await nextEvent(subscribe(ws, Me), 'me result');
    expect(result.data!.me!.id).toBe(user.id);
    await ws.client.dispose();
  });

  it('closes a connection whose token is invalid with 4401 and a reason', async () => {
    const ws = connectWs(server, 'not-a-token');
    const closed = await ws.closed;
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(/invalid/i);
  });

  it('closes the socket with 4401 when the access token expires', async () => {
    const user = await signUp(server);
    const { sub, sid } = jwt.decode(user.accessToken) as { sub: string; sid: number };
    const shortLived = jwt.sign({ sub, sid, role: 'USER' }, TEST_JWT_SECRET, { expiresIn: 2 });
    const ws = connectWs(server, shortLived);
    await ws.connected;
    const closed = await ws.closed;
    expect(closed).toEqual({ code: 4401, reason: 'Unauthorized: access token expired' });
  });

  it('refuses a presence subscription without a signed-in user', async () => {
    const ws = connectWs(server);
    const result = await nextEvent(subscribe(ws, Presence, { userIds: ['1'] }), 'error');
    expect(code(result)).toBe('UNAUTHENTICATED');
    await ws.client.dispose();
  });

  it('closes the sockets of a user who logs out on that device, or is banned', async () => {
    const user = await signUp(server);
    const first = connectWs(server, user.accessToken);
    await first.connected;
    expect((await gql(server, LogoutOverHttp, undefined, user.accessToken)).data!.logout).toBe(true);
    expect(await first.closed).toEqual({ code: 4401, reason: 'Unauthorized: session ended' });

    const again = await gql(server, Login, { input: { identifier: user.username, password: user.password } });
    const second = connectWs(server, again.data!.login.accessToken);
    await second.connected;
    const adminLogin = await gql(server, Login, { input: { identifier: admin.username, password: admin.password } });
    await gql(server, BanUser, { id: user.id }, adminLogin.data!.login.accessToken);
    expect(await second.closed).toEqual({ code: 4403, reason: 'Forbidden: account banned' });
  });
});

describe('presence', () => {
  let watcher: SignedUp;
  beforeAll(async () => {
    watcher = await signUp(server);
  });

  it('is online while any connection is open, then offline with lastSeenAt', async () => {
    const watched = await signUp(server);
    const ws = connectWs(server, watcher.accessToken);
    const events = subscribe(ws, Presence, { userIds: [watched.id] });

    const initial = await nextEvent(events, 'initial state');
    expect(initial.data!.presence).toMatchObject({ isOnline: false, lastSeenAt: null, user: { id: watched.id } });

    const phone = connectWs(server, watched.accessToken);
    const online = await nextEvent(events, 'online');
    expect(online.data!.presence).toMatchObject({ isOnline: true, user: { id: watched.id, username: watched.username } });

    const laptop = connectWs(server, watched.accessToken);
    await laptop.connected;
    await phone.client.dispose();
    await phone.closed;
    expect((await gql(server, IsOnline, { id: watched.id }, watcher.accessToken)).data!.user!.isOnline).toBe(true);

    const before = Date.now();
    await laptop.client.dispose();
    const offline = await nextEvent(events, 'offline');
    expect(offline.data!.presence.isOnline).toBe(false);
    const lastSeen = Date.parse(offline.data!.presence.lastSeenAt!);
    expect(lastSeen).toBeGreaterThanOrEqual(before - 1000);
    const stored = await gql(server, IsOnline, { id: watched.id }, watcher.accessToken);
    expect(stored.data!.user).toEqual({ isOnline: false, lastSeenAt: offline.data!.presence.lastSeenAt });
    await ws.client.dispose();
  });

  it('refuses too many or malformed ids with BAD_USER_INPUT', async () => {
    const ws = connectWs(server, watcher.accessToken);
    const tooMany = await nextEvent(subscribe(ws, Presence, { userIds: Array.from({ length: 201 }, (_, i) => String(i + 1)) }));
    expect(code(tooMany)).toBe('BAD_USER_INPUT');
    const malformed = await nextEvent(subscribe(ws, Presence, { userIds: ['abc'] }));
    expect(code(malformed)).toBe('BAD_USER_INPUT');
    await ws.client.dispose();
  });
});
