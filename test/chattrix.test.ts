import { getOperationAST } from 'graphql';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '../src/gateway/gateway.ts';
import { completeChatImplementation, fileUploadWithProgress, type ChattrixUser } from './seed-clients/chattrix.js';
import { signUp } from './helpers/clients.ts';
import { connected, connectIo, nextIo, recordIo } from './helpers/sockets.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { PNG } from './helpers/upload.ts';

let server: TestServer;
const sockets: Socket[] = [];
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const PASSWORD = 'correct horse battery';
const MB16 = 16 * 1024 * 1024;
const CROSS_SITE = { success: false, message: 'Request refused: this origin is not allowed', code: 'CSRF_FAILED' };
/** The seed's error body for a refused field. */
const invalid = (field: string, problem: string) => ({ success: false, message: `${field}: ${problem}`, errors: { [field]: [problem] }, code: 'BAD_USER_INPUT' });
/** The same, for a field of the wrong type. */
const notText = (field: string) => invalid(field, 'must be a string');
const THIRTY_DAYS = 30 * 24 * 3600;

/** A browser: its cookie jar, and the fetch and socket.io client of a page the server served. */
class Browser {
  readonly jar = new Map<string, string>();

  cookieHeader(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  keep(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const name = pair.slice(0, pair.indexOf('='));
      if (/max-age=0/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, pair.slice(name.length + 1));
    }
  }

  /** A page script's fetch: relative URLs resolve against the page, cookies go along, and the browser adds Origin. */
  fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('origin', server.url);
    if (this.jar.size) headers.set('cookie', this.cookieHeader());
    const res = await fetch(new URL(String(input), server.url), { ...init, headers });
    this.keep(res);
    return res;
  }) as typeof fetch;

  /** The page's socket.io client: the browser sends the page's Origin and the cookies. */
  io = (path: string): Socket => {
    const socket = ioClient(new URL(path, server.url).href, {
      reconnection: false,
      forceNew: true,
      transports: ['websocket'],
      extraHeaders: { cookie: this.cookieHeader(), origin: server.url },
    });
    sockets.push(socket);
    return socket;
  };
}

interface Reply {
  status: number;
  body: any;
  headers: Headers;
  /** Set-Cookie lines by cookie name. */
  cookies: Record<string, string>;
}

interface CallOptions {
  as?: Browser;
  json?: unknown;
  form?: FormData;
  token?: string;
  headers?: Record<string, string>;
  /** The seed's documented X-Requested-With header (on unless a test leaves it out). */
  xhr?: boolean;
}

/** One request to the chattrix mount as its app's scripts make them. */
async function call(method: string, path: string, { as, json, form, token, headers = {}, xhr = true }: CallOptions = {}, base = server.url): Promise<Reply> {
  const h: Record<string, string> = { ...headers };
  if (xhr) h['x-requested-with'] = 'XMLHttpRequest';
  if (as?.jar.size) h.cookie = as.cookieHeader();
  if (token) h.authorization = `Bearer ${token}`;
  if (json !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${base}/chattrix${path}`, { method, headers: h, body: json !== undefined ? JSON.stringify(json) : form });
  as?.keep(res);
  const cookies = Object.fromEntries(res.headers.getSetCookie().map((line) => [line.slice(0, line.indexOf('=')), line]));
  return { status: res.status, body: await res.json(), headers: res.headers, cookies };
}

interface Account {
  id: number;
  username: string;
  display_name: string;
  browser: Browser;
}

async function register(fields: Record<string, unknown> = {}): Promise<Reply & { username: string }> {
  const username = uniqueName('cx');
  const reply = await call('POST', '/register', { json: { username, email: `${username}@example.com`, password: PASSWORD, display_name: `Name ${username}`, ...fields } });
  return { ...reply, username };
}

/** A registered user signed in through POST /login, with the session cookie in their browser. */
async function account(rememberMe = false): Promise<Account> {
  const { body, username } = await register();
  const browser = new Browser();
  const login = await call('POST', '/login', { as: browser, json: { username, password: PASSWORD, remember_me: rememberMe } });
  expect(login.status).toBe(200);
  return { id: body.user.id, username, display_name: body.user.display_name, browser };
}

const brief = (a: Account) => ({ id: a.id, username: a.username, display_name: a.display_name, profile_pic: 'default.jpg' });

async function privateConversation(a: Account, b: Account): Promise<number> {
  const created = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'private', participant_ids: [b.id] } });
  expect(created.status).toBe(201);
  return created.body.conversation.id;
}

async function send(a: Account, conversationId: number, content: string) {
  const sent = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content, type: 'text' } });
  expect(sent.status).toBe(201);
  return sent.body.message_data;
}

async function socketOf(a: Account): Promise<Socket> {
  const socket = await connectIo(`${server.url}/chattrix`, { extraHeaders: { cookie: a.browser.cookieHeader() } });
  sockets.push(socket);
  return socket;
}

/** Joins a room and resolves once the server listens for it (the event's acknowledgement). */
function join(socket: Socket, conversationId: number): Promise<unknown> {
  return new Promise((resolve) => socket.emit('join_conversation', { conversation_id: conversationId }, resolve));
}

const textFile = (content: string, name: string) => new File([content], name, { type: 'text/plain' });

function formWith(fields: Record<string, string | Blob>): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  await server?.stop();
});

describe('chattrix sessions', () => {
  it('registers with 201 and the user, and refuses a taken username with the seed body', async () => {
    const { status, body, username } = await register();
    expect(status).toBe(201);
    expect(body).toEqual({
      success: true,
      message: 'User registered successfully',
      user: {
        id: expect.any(Number),
        username,
        email: `${username}@example.com`,
        display_name: `Name ${username}`,
        profile_pic: 'default.jpg',
        created_at: expect.stringMatching(iso),
      },
    });
    const again = await register({ username });
    expect(again.status).toBe(400);
    expect(again.body).toEqual({
      success: false,
      message: 'Username already exists',
      errors: { username: [`Username '${username}' is already taken`] },
      code: 'CONFLICT',
    });
    const short = await register({ password: 'short' });
    expect(short.status).toBe(400);
    expect(short.body).toEqual(invalid('password', 'must be at least 8 characters'));
    const badName = await register({ display_name: 'x'.repeat(65) });
    expect(badName.body.errors).toEqual({ display_name: ['must be at most 64 characters'] });
  });

  it('logs in with a browser-session cookie, which the profile then reads', async () => {
    const { body: registered, username } = await register();
    const browser = new Browser();
    const login = await call('POST', '/login', { as: browser, json: { username, password: PASSWORD, remember_me: false } });
    expect(login.status).toBe(200);
    expect(login.body).toEqual({
      success: true,
      message: 'Login successful',
      user: { id: registered.user.id, username, display_name: `Name ${username}`, profile_pic: 'default.jpg' },
      redirect_url: '/chat',
    });
    expect(login.cookies.session).toMatch(/^session=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(login.cookies.remember_token).toMatch(/^remember_token=; Max-Age=0;/);
    const profile = await call('GET', '/api/user/profile', { as: browser });
    expect(profile.status).toBe(200);
    expect(profile.body).toEqual({
      id: registered.user.id,
      username,
      email: `${username}@example.com`,
      display_name: `Name ${username}`,
      profile_pic: 'default.jpg',
      bio: null,
      last_seen: null,
      is_online: false,
      created_at: registered.user.created_at,
      settings: { notifications_enabled: true, sound_enabled: true, theme: 'light' },
    });
  });

  it('answers a wrong password and a missing session with 401 and the seed body', async () => {
    const { username } = await register();
    const wrong = await call('POST', '/login', { json: { username, password: 'not the password' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ success: false, message: 'Invalid username or password', code: 'UNAUTHENTICATED' });
    const missing = await call('POST', '/login', { json: { username } });
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual({ password: ['is required'] });
    for (const path of ['/api/user/profile', '/api/conversations', '/api/users']) {
      const anonymous = await call('GET', path);
      expect(anonymous.status).toBe(401);
      expect(anonymous.body).toEqual({ success: false, message: expect.any(String), code: 'UNAUTHENTICATED' });
    }
  });

  it('remembers a session for 30 days and renews it from remember_token', async () => {
    const a = await account(true);
    const { cookies } = await call('POST', '/login', { as: a.browser, json: { username: a.username, password: PASSWORD, remember_me: true } });
    expect(cookies.session).toMatch(new RegExp(`^session=[^;]+; Max-Age=${THIRTY_DAYS}; Path=/; HttpOnly; SameSite=Lax$`));
    expect(cookies.remember_token).toMatch(new RegExp(`^remember_token=[^;]+; Max-Age=${THIRTY_DAYS}; Path=/; HttpOnly; SameSite=Lax$`));

    // The session cookie is gone (or no longer valid): remember_token signs the browser in again.
    a.browser.jar.set('session', 'expired-or-forged');
    const oldRemember = a.browser.jar.get('remember_token');
    const renewed = await call('GET', '/api/user/profile', { as: a.browser });
    expect(renewed.status).toBe(200);
    expect(renewed.body.username).toBe(a.username);
    expect(renewed.cookies.session).toMatch(/^session=[^;]+; Max-Age=/);
    expect(a.browser.jar.get('remember_token')).not.toBe(oldRemember);
    a.browser.jar.delete('session');
    expect((await call('GET', '/api/user/profile', { as: a.browser })).status).toBe(200);
    expect(a.browser.jar.has('session')).toBe(true);

    const stale = new Browser();
    stale.jar.set('remember_token', 'not-a-token');
    const refused = await call('GET', '/api/user/profile', { as: stale });
    expect(refused.status).toBe(401);
    expect(refused.cookies.remember_token).toMatch(/^remember_token=; Max-Age=0;/);
  });

  it('logs out: 200, both cookies cleared, and the old session no longer works', async () => {
    const a = await account(true);
    const session = a.browser.jar.get('session')!;
    const out = await call('POST', '/logout', { as: a.browser });
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ success: true, message: 'Logged out successfully' });
    expect(out.cookies.session).toMatch(/^session=; Max-Age=0; Path=\//);
    expect(out.cookies.remember_token).toMatch(/^remember_token=; Max-Age=0; Path=\//);
    expect(a.browser.jar.size).toBe(0);
    const replayed = new Browser();
    replayed.jar.set('session', session);
    expect((await call('GET', '/api/user/profile', { as: replayed })).status).toBe(401);
  });

  it('takes an Authorization bearer token where there is no cookie', async () => {
    const user = await signUp(server);
    const profile = await call('PUT', '/api/user/profile', { token: user.accessToken, json: { bio: 'via bearer' }, xhr: false });
    expect(profile.status).toBe(200);
    expect(profile.body.user).toEqual({ id: Number(user.id), username: user.username, display_name: user.username, bio: 'via bearer' });
  });

  it('refuses cookie-authenticated writes without X-Requested-With or this origin (403 CSRF_FAILED)', async () => {
    const a = await account();
    const forged = await call('PUT', '/api/user/profile', { as: a.browser, json: { bio: 'forged' }, xhr: false });
    expect(forged.status).toBe(403);
    expect(forged.body).toEqual({ success: false, message: expect.stringContaining('X-Requested-With'), code: 'CSRF_FAILED' });
    const crossSite = await call('PUT', '/api/user/profile', { as: a.browser, json: { bio: 'forged' }, xhr: false, headers: { origin: 'https://evil.example' } });
    expect(crossSite.status).toBe(403);
    expect(crossSite.body).toEqual(CROSS_SITE);
    // A browser names the page's origin on every write; a foreign one is refused whatever else the request carries.
    const crossSiteXhr = await call('PUT', '/api/user/profile', { as: a.browser, json: { bio: 'forged' }, headers: { origin: 'https://evil.example' } });
    expect(crossSiteXhr.status).toBe(403);
    expect(crossSiteXhr.body).toEqual(CROSS_SITE);
    const sameOrigin = await call('PUT', '/api/user/profile', { as: a.browser, json: { bio: 'mine' }, xhr: false, headers: { origin: server.url } });
    expect(sameOrigin.status).toBe(200);
    const withHeader = await call('PUT', '/api/user/profile', { as: a.browser, json: { bio: 'mine too' } });
    expect(withHeader.status).toBe(200);
    expect((await call('GET', '/api/user/profile', { as: a.browser, xhr: false })).body.bio).toBe('mine too');
  });

  it("refuses sign-in and sign-up from another site's page (login CSRF), and allows them from ours or without an Origin", async () => {
    const { username } = await register();
    // Another site's page could sign its visitor into the attacker's account (no cookies are needed for that).
    for (const [path, json] of [
      ['/login', { username, password: PASSWORD }],
      ['/register', { username: uniqueName('cx'), password: PASSWORD }],
    ] as const) {
      const forged = await call('POST', path, { json, xhr: false, headers: { origin: 'https://evil.example' } });
      expect(forged.status).toBe(403);
      expect(forged.body).toEqual(CROSS_SITE);
      expect(forged.cookies).toEqual({});
      const sandboxed = await call('POST', path, { json, headers: { origin: 'null' } });
      expect(sandboxed.status).toBe(403);
      expect(sandboxed.body).toEqual(CROSS_SITE);
    }
    const ours = await call('POST', '/login', { json: { username, password: PASSWORD }, xhr: false, headers: { origin: server.url } });
    expect(ours.status).toBe(200);
    expect(ours.body).toMatchObject({ success: true, message: 'Login successful' });
    const apiClient = await call('POST', '/login', { json: { username, password: PASSWORD }, xhr: false });
    expect(apiClient.status).toBe(200);
    const signUp = await call('POST', '/register', { json: { username: uniqueName('cx'), password: PASSWORD }, xhr: false, headers: { origin: server.url } });
    expect(signUp.status).toBe(201);
  });

  it('trusts an origin CORS_ORIGINS lists by name, for sign-in, cookie writes and the socket', async () => {
    const listed = await startServer({ CORS_ORIGINS: 'https://app.example, https://admin.example' });
    try {
      const username = uniqueName('cx');
      const at = (path: string, origin: string, init: RequestInit = {}) =>
        fetch(`${listed.url}/chattrix${path}`, { method: 'POST', ...init, headers: { 'content-type': 'application/json', origin, ...(init.headers as Record<string, string>) } });
      expect((await at('/register', 'https://app.example', { body: JSON.stringify({ username, password: PASSWORD }) })).status).toBe(201);
      const refused = await at('/login', 'https://evil.example', { body: JSON.stringify({ username, password: PASSWORD }) });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual(CROSS_SITE);
      const login = await at('/login', 'https://admin.example', { body: JSON.stringify({ username, password: PASSWORD }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.getSetCookie().find((c) => c.startsWith('session='))!.split(';')[0];
      const write = await at('/api/user/profile', 'https://app.example', { method: 'PUT', headers: { cookie }, body: JSON.stringify({ bio: 'from the app' }) });
      expect(write.status).toBe(200);
      const socket = await connectIo(`${listed.url}/chattrix`, { extraHeaders: { cookie, origin: 'https://app.example' } });
      sockets.push(socket);
      expect(socket.connected).toBe(true);
      await expect(connectIo(`${listed.url}/chattrix`, { extraHeaders: { cookie, origin: 'https://evil.example' } })).rejects.toMatchObject({
        data: CROSS_SITE,
      });
      socket.close();
    } finally {
      await listed.stop();
    }
  });
});

describe('chattrix users', () => {
  it('updates the profile and its settings', async () => {
    const a = await account();
    const updated = await call('PUT', '/api/user/profile', {
      as: a.browser,
      json: { display_name: 'John Smith', bio: 'Updated bio text', settings: { notifications_enabled: false, theme: 'dark' } },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toEqual({
      success: true,
      message: 'Profile updated successfully',
      user: { id: a.id, username: a.username, display_name: 'John Smith', bio: 'Updated bio text' },
    });
    const profile = await call('GET', '/api/user/profile', { as: a.browser });
    expect(profile.body).toMatchObject({
      display_name: 'John Smith',
      bio: 'Updated bio text',
      settings: { notifications_enabled: false, sound_enabled: true, theme: 'dark' },
    });
    const tooLong = await call('PUT', '/api/user/profile', { as: a.browser, json: { display_name: 'x'.repeat(65) } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toEqual(invalid('display_name', 'must be at most 64 characters'));
  });

  it('uploads a profile picture, served at profile_pic_url; refuses a non-image', async () => {
    const a = await account();
    const uploaded = await call('POST', '/api/user/upload-avatar', { as: a.browser, form: formWith({ file: new File([PNG], 'me.png', { type: 'image/png' }) }) });
    expect(uploaded.status).toBe(200);
    expect(uploaded.body).toEqual({
      success: true,
      message: 'Profile picture updated successfully',
      profile_pic_url: expect.stringMatching(/^http:\/\/.+\/avatars\/\d+$/),
    });
    expect((await call('GET', '/api/user/profile', { as: a.browser })).body.profile_pic).toBe(uploaded.body.profile_pic_url);
    const image = await fetch(uploaded.body.profile_pic_url);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    const notImage = await call('POST', '/api/user/upload-avatar', { as: a.browser, form: formWith({ file: textFile('hello', 'me.txt') }) });
    expect(notImage.status).toBe(400);
    expect(notImage.body).toEqual(invalid('file', 'an avatar must be an image'));
    const none = await call('POST', '/api/user/upload-avatar', { as: a.browser, form: formWith({ other: 'x' }) });
    expect(none.body.errors).toEqual({ file: ['is required'] });
  });

  it('lists and searches users with limit, offset and total', async () => {
    const tag = uniqueName('dir');
    const people = [];
    for (const n of [1, 2, 3]) people.push((await register({ username: `${tag}_${n}`, display_name: `Person ${n}` })).body.user);
    const a = await account();
    const all = await call('GET', `/api/users?search=${tag}`, { as: a.browser });
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      users: people.map((p) => ({ id: p.id, username: p.username, display_name: p.display_name, profile_pic: 'default.jpg', is_online: false, last_seen: null })),
      total: 3,
      limit: 50,
      offset: 0,
    });
    const page = await call('GET', `/api/users?search=${tag}&limit=1&offset=1`, { as: a.browser });
    expect(page.body).toEqual({ users: [all.body.users[1]], total: 3, limit: 1, offset: 1 });
    const clamped = await call('GET', `/api/users?search=${tag}&limit=1000`, { as: a.browser });
    expect(clamped.body.limit).toBe(100);
    for (const offset of [-1, 10_001, 999_999_999]) {
      const bad = await call('GET', `/api/users?offset=${offset}`, { as: a.browser });
      expect(bad.status).toBe(400);
      expect(bad.body).toEqual(invalid('offset', 'must be an integer from 0 to 10000'));
    }
  });

  it('reads the directory no further than its end: an offset past the total costs one query', async () => {
    // More matches than one page of the connection (100); made directly, as signing up 150 users would take long.
    const tag = uniqueName('many');
    await server.app.services.db.user.createMany({ data: Array.from({ length: 150 }, (_, n) => ({ username: `${tag}_${String(n).padStart(3, '0')}` })) });
    const a = await account();
    const run = vi.spyOn(Gateway.prototype, 'run');
    const directoryReads = () => run.mock.calls.filter(([document]) => getOperationAST(document)?.name?.value === 'ChattrixUsers').length;
    try {
      const past = await call('GET', `/api/users?search=${tag}&offset=150`, { as: a.browser });
      expect(past.status).toBe(200);
      expect(past.body).toEqual({ users: [], total: 150, limit: 50, offset: 150 });
      expect(directoryReads()).toBe(1);

      run.mockClear();
      const last = await call('GET', `/api/users?search=${tag}&offset=140&limit=20`, { as: a.browser });
      expect(last.body).toEqual({
        users: Array.from({ length: 10 }, (_, n) => ({
          id: expect.any(Number),
          username: `${tag}_${140 + n}`,
          display_name: `${tag}_${140 + n}`,
          profile_pic: 'default.jpg',
          is_online: false,
          last_seen: null,
        })),
        total: 150,
        limit: 20,
        offset: 140,
      });
      expect(directoryReads()).toBe(2);
    } finally {
      run.mockRestore();
    }
  });
});

describe('chattrix conversations and messages', () => {
  it('creates a private conversation (the same one twice) and a group; lists them', async () => {
    const [a, b, c] = await Promise.all([account(), account(), account()]);
    const created = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'private', participant_ids: [b.id] } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      success: true,
      message: 'Conversation created successfully',
      conversation: {
        id: expect.any(Number),
        type: 'private',
        participants: expect.arrayContaining([
          { id: a.id, username: a.username, display_name: a.display_name },
          { id: b.id, username: b.username, display_name: b.display_name },
        ]),
        created_at: expect.stringMatching(iso),
      },
    });
    expect(created.body.conversation.participants).toHaveLength(2);
    const again = await call('POST', '/api/conversations', { as: b.browser, json: { type: 'private', participant_ids: [a.id] } });
    expect(again.body.conversation.id).toBe(created.body.conversation.id);
    const group = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'group', participant_ids: [b.id, c.id], name: 'Team' } });
    expect(group.status).toBe(201);
    expect(group.body.conversation).toMatchObject({ type: 'group' });
    expect(group.body.conversation.participants).toHaveLength(3);

    const sent = await send(b, created.body.conversation.id, 'Hey, how are you?');
    const list = await call('GET', '/api/conversations', { as: a.browser });
    expect(list.status).toBe(200);
    expect(list.body.conversations).toHaveLength(2);
    expect(list.body.conversations[0]).toEqual({
      id: created.body.conversation.id,
      type: 'private',
      participants: expect.arrayContaining([brief(a), brief(b)]),
      last_message: { id: sent.id, content: 'Hey, how are you?', sender_id: b.id, sender_name: b.display_name, timestamp: sent.timestamp, type: 'text' },
      unread_count: 1,
      updated_at: expect.stringMatching(iso),
    });
    expect(list.body.conversations[1]).toEqual({
      id: group.body.conversation.id,
      type: 'group',
      participants: expect.arrayContaining([brief(a), brief(b), brief(c)]),
      last_message: null,
      unread_count: 0,
      updated_at: expect.stringMatching(iso),
    });
  });

  it('refuses bad conversation requests with the seed error body', async () => {
    const [a, b, c] = await Promise.all([account(), account(), account()]);
    const noType = await call('POST', '/api/conversations', { as: a.browser, json: { participant_ids: [b.id] } });
    expect(noType.status).toBe(400);
    expect(noType.body).toEqual(invalid('type', 'is required'));
    const badType = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'secret', participant_ids: [b.id] } });
    expect(badType.body.errors).toEqual({ type: ['must be one of private, group, public'] });
    const two = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'private', participant_ids: [b.id, c.id] } });
    expect(two.status).toBe(400);
    expect(two.body.errors).toEqual({ participant_ids: ['must name exactly one other user'] });
    const nobody = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'private', participant_ids: [99999999] } });
    expect(nobody.status).toBe(404);
    expect(nobody.body).toEqual({ success: false, message: 'User not found', code: 'NOT_FOUND' });
    const unnamed = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'public', participant_ids: [] } });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body).toEqual(invalid('name', 'is required'));
    const named = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'public', name: uniqueName('room') } });
    expect(named.status).toBe(201);
    expect(named.body.conversation).toMatchObject({ type: 'public' });
  });

  it('sends, lists and pages messages with limit, before, after and has_more', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const first = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 'Hello there!', type: 'text' } });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({
      success: true,
      message: 'Message sent successfully',
      message_data: {
        id: expect.any(Number),
        conversation_id: conversationId,
        sender_id: a.id,
        content: 'Hello there!',
        type: 'text',
        timestamp: expect.stringMatching(iso),
        file_url: null,
        file_name: null,
        file_size: null,
      },
    });
    const sent = [first.body.message_data];
    for (const n of [2, 3, 4, 5]) sent.push(await send(n % 2 ? a : b, conversationId, `message ${n}`));
    const asListed = (m: any) => ({ ...m, sender: brief(m.sender_id === a.id ? a : b), edited: false, edited_at: null });

    const all = await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser });
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ messages: sent.map(asListed), has_more: false, conversation_id: conversationId });
    const newest = await call('GET', `/api/conversations/${conversationId}/messages?limit=2`, { as: b.browser });
    expect(newest.body).toEqual({ messages: sent.slice(3).map(asListed), has_more: true, conversation_id: conversationId });
    const older = await call('GET', `/api/conversations/${conversationId}/messages?limit=2&before=${sent[3].id}`, { as: b.browser });
    expect(older.body).toEqual({ messages: sent.slice(1, 3).map(asListed), has_more: true, conversation_id: conversationId });
    const oldest = await call('GET', `/api/conversations/${conversationId}/messages?limit=2&before=${sent[1].id}`, { as: b.browser });
    expect(oldest.body).toEqual({ messages: [asListed(sent[0])], has_more: false, conversation_id: conversationId });
    const newer = await call('GET', `/api/conversations/${conversationId}/messages?limit=2&after=${sent[0].id}`, { as: b.browser });
    expect(newer.body).toEqual({ messages: sent.slice(1, 3).map(asListed), has_more: true, conversation_id: conversationId });
    const rest = await call('GET', `/api/conversations/${conversationId}/messages?limit=2&after=${sent[2].id}`, { as: b.browser });
    expect(rest.body).toEqual({ messages: sent.slice(3).map(asListed), has_more: false, conversation_id: conversationId });
    // Past the documented maximum, limit is taken as 100.
    const clamped = await call('GET', `/api/conversations/${conversationId}/messages?limit=1000`, { as: b.browser });
    expect(clamped.body.messages).toHaveLength(5);

    const zero = await call('GET', `/api/conversations/${conversationId}/messages?limit=0`, { as: b.browser });
    expect(zero.status).toBe(400);
    expect(zero.body).toEqual(invalid('limit', 'must be an integer of at least 1'));
    const badCursor = await call('GET', `/api/conversations/${conversationId}/messages?before=abc`, { as: b.browser });
    expect(badCursor.body.errors).toEqual({ before: ['must be a message id'] });
  });

  it('edits and deletes only the sender’s own messages', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const message = await send(a, conversationId, 'Original');
    const edited = await call('PUT', `/api/messages/${message.id}`, { as: a.browser, json: { content: 'Updated message content' } });
    expect(edited.status).toBe(200);
    expect(edited.body).toEqual({
      success: true,
      message: 'Message updated successfully',
      message_data: { id: message.id, content: 'Updated message content', edited: true, edited_at: expect.stringMatching(iso) },
    });
    const listed = await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser });
    expect(listed.body.messages[0]).toMatchObject({ content: 'Updated message content', edited: true, edited_at: edited.body.message_data.edited_at });

    // An edit without content is refused rather than emptying the message.
    for (const json of [{}, { content: null }, { content: '' }]) {
      const noContent = await call('PUT', `/api/messages/${message.id}`, { as: a.browser, json });
      expect(noContent.status).toBe(400);
      expect(noContent.body).toEqual(invalid('content', 'is required'));
    }
    expect((await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser })).body.messages[0].content).toBe('Updated message content');

    const notMine = await call('PUT', `/api/messages/${message.id}`, { as: b.browser, json: { content: 'hijacked' } });
    expect(notMine.status).toBe(403);
    expect(notMine.body).toEqual({ success: false, message: 'Only the sender can change this message', code: 'FORBIDDEN' });
    expect((await call('DELETE', `/api/messages/${message.id}`, { as: b.browser })).status).toBe(403);

    const deleted = await call('DELETE', `/api/messages/${message.id}`, { as: a.browser });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ success: true, message: 'Message deleted successfully' });
    expect((await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser })).body.messages).toEqual([]);
    const gone = await call('DELETE', `/api/messages/${message.id}`, { as: a.browser });
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ success: false, message: 'Message not found', code: 'NOT_FOUND' });
  });

  it('answers strangers, unknown conversations and bad messages with the seed error body', async () => {
    const [a, b, stranger] = await Promise.all([account(), account(), account()]);
    const conversationId = await privateConversation(a, b);
    const forbidden = await call('GET', `/api/conversations/${conversationId}/messages`, { as: stranger.browser });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({ success: false, message: 'You are not a participant of this conversation', code: 'FORBIDDEN' });
    const posting = await call('POST', `/api/conversations/${conversationId}/messages`, { as: stranger.browser, json: { content: 'hi' } });
    expect(posting.status).toBe(403);
    const unknown = await call('GET', '/api/conversations/99999999/messages', { as: a.browser });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ success: false, message: 'Conversation not found', code: 'NOT_FOUND' });
    const empty = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: '  ', type: 'text' } });
    expect(empty.status).toBe(400);
    expect(empty.body).toEqual(invalid('content', 'must not be empty'));
    const badType = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 'x', type: 'sticker' } });
    expect(badType.body.errors).toEqual({ type: ['must be one of text, image, file, audio, video, system'] });
    const notOurs = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 'x', type: 'file', file_url: 'https://elsewhere.example/a.pdf' } });
    expect(notOurs.body.errors).toEqual({ file_url: ['must be a url returned by /api/upload'] });
    const missingRoute = await call('GET', '/api/nothing-here', { as: a.browser });
    expect(missingRoute).toMatchObject({ status: 404, body: { success: false, message: 'Not found', code: 'NOT_FOUND' } });
  });

  it('sends a file message as multipart, and a message with a file from /api/upload', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const multipart = await call('POST', `/api/conversations/${conversationId}/messages`, {
      as: a.browser,
      form: formWith({ content: 'Check out this file:', type: 'file', file: textFile('some notes', 'notes.txt') }),
    });
    expect(multipart.status).toBe(201);
    expect(multipart.body.message_data).toEqual({
      id: expect.any(Number),
      conversation_id: conversationId,
      sender_id: a.id,
      content: 'Check out this file:',
      type: 'file',
      timestamp: expect.stringMatching(iso),
      file_url: expect.stringMatching(/\/files\/\d+\/notes\.txt\?/),
      file_name: 'notes.txt',
      file_size: 10,
    });
    const download = await fetch(multipart.body.message_data.file_url);
    expect(await download.text()).toBe('some notes');

    const uploaded = await call('POST', '/api/upload', { as: a.browser, form: formWith({ file: textFile('report body', 'document.txt'), conversation_id: String(conversationId) }) });
    expect(uploaded.status).toBe(200);
    expect(uploaded.body).toEqual({
      success: true,
      message: 'File uploaded successfully',
      file: { url: expect.stringMatching(/\/files\/\d+\/document\.txt\?/), name: 'document.txt', size: 11, type: 'text/plain' },
    });
    const linked = await call('POST', `/api/conversations/${conversationId}/messages`, {
      as: a.browser,
      json: { content: '', type: 'file', file_url: uploaded.body.file.url, file_name: 'document.txt', file_size: 11 },
    });
    expect(linked.status).toBe(201);
    expect(linked.body.message_data).toMatchObject({ content: '', type: 'file', file_name: 'document.txt', file_size: 11 });
    const history = await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser });
    expect(history.body.messages.map((m: any) => [m.type, m.file_name, m.file_size])).toEqual([
      ['file', 'notes.txt', 10],
      ['file', 'document.txt', 11],
    ]);
    // A file goes with one message only.
    const twice = await call('POST', `/api/conversations/${conversationId}/messages`, { as: b.browser, json: { type: 'file', file_url: uploaded.body.file.url } });
    expect(twice.status).toBe(400);
    expect(twice.body.errors).toEqual({ file: [expect.stringContaining('not one of your uploads')] });
    const noFile = await call('POST', '/api/upload', { as: a.browser, form: formWith({ conversation_id: String(conversationId) }) });
    expect(noFile.body.errors).toEqual({ file: ['is required'] });
  });

  it('refuses files over 16 MB with 413 and the seed message', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const big = () => new File([new Uint8Array(MB16 + 1)], 'big.bin');
    for (const path of ['/api/upload', `/api/conversations/${conversationId}/messages`]) {
      const refused = await call('POST', path, { as: a.browser, form: formWith({ file: big(), type: 'file' }) });
      expect(refused.status).toBe(413);
      expect(refused.body).toEqual({ success: false, message: 'File too large. Maximum size is 16MB.', code: 'PAYLOAD_TOO_LARGE' });
    }
  });
});

describe('chattrix input types', () => {
  it('refuses objects, arrays and booleans where text is expected, naming the field', async () => {
    const { username } = await register();
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const message = await send(a, conversationId, 'Original');
    const refusals: Array<[string, string, CallOptions, string]> = [
      ['POST', '/register', { json: { username: [uniqueName('cx')], password: PASSWORD } }, 'username'],
      ['POST', '/register', { json: { username: uniqueName('cx'), password: PASSWORD, display_name: { first: 'A' } } }, 'display_name'],
      ['POST', '/register', { json: { username: uniqueName('cx'), password: PASSWORD, email: true } }, 'email'],
      ['POST', '/login', { json: { username: [username], password: PASSWORD } }, 'username'],
      ['POST', '/login', { json: { username, password: { $ne: '' } } }, 'password'],
      ['PUT', '/api/user/profile', { as: a.browser, json: { bio: { a: 1 } } }, 'bio'],
      ['PUT', '/api/user/profile', { as: a.browser, json: { display_name: ['x'] } }, 'display_name'],
      ['POST', '/api/conversations', { as: a.browser, json: { type: ['private'], participant_ids: [b.id] } }, 'type'],
      ['POST', '/api/conversations', { as: a.browser, json: { type: 'group', participant_ids: [b.id], name: { a: 1 } } }, 'name'],
      ['POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: { a: 1 }, type: 'text' } }, 'content'],
      ['POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: ['x'] } }, 'content'],
      ['POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 'x', type: ['text'] } }, 'type'],
      ['POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 'x', file_url: { url: '/files/1/x' } } }, 'file_url'],
      ['PUT', `/api/messages/${message.id}`, { as: a.browser, json: { content: { a: 1 } } }, 'content'],
      ['POST', '/api/upload', { as: a.browser, json: { conversation_id: { id: conversationId } } }, 'conversation_id'],
      ['DELETE', '/api/subscribe', { as: a.browser, json: { endpoint: ['https://push.example/1'] } }, 'endpoint'],
    ];
    for (const [method, path, options, field] of refusals) {
      const refused = await call(method, path, options);
      expect({ method, path, status: refused.status, body: refused.body }).toEqual({ method, path, status: 400, body: notText(field) });
    }
    const badIds = await call('POST', '/api/conversations', { as: a.browser, json: { type: 'group', participant_ids: [{ id: b.id }], name: 'Team' } });
    expect(badIds.status).toBe(400);
    expect(badIds.body).toEqual(invalid('participant_ids', 'must be a list of user ids'));
    const badSubscription = await call('POST', '/api/subscribe', { as: a.browser, json: { subscription: { endpoint: { a: 1 }, keys: { p256dh: 'k', auth: 'a' } } } });
    expect(badSubscription.status).toBe(400);
    expect(badSubscription.body).toEqual(invalid('subscription', 'must have endpoint, keys.p256dh and keys.auth'));

    // Nothing was stored as "[object Object]": the history holds the one message, unchanged, and the profile its old bio.
    const history = await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser });
    expect(history.body.messages.map((m: any) => m.content)).toEqual(['Original']);
    expect((await call('GET', '/api/user/profile', { as: a.browser })).body).toMatchObject({ bio: null, display_name: a.display_name });
    // Numbers are text enough (loose clients send them).
    const numeric = await call('POST', `/api/conversations/${conversationId}/messages`, { as: a.browser, json: { content: 42, type: 'text' } });
    expect(numeric.status).toBe(201);
    expect(numeric.body.message_data.content).toBe('42');
  });

  it('refuses a socket send_message whose content is not text, with the seed body in error and the acknowledgement', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const socket = await socketOf(a);
    for (const content of [{ a: 1 }, ['x'], true]) {
      const emitted = nextIo(socket, 'error');
      const ack = await new Promise((resolve) => socket.emit('send_message', { conversation_id: conversationId, content, type: 'text' }, resolve));
      expect(ack).toEqual(notText('content'));
      expect(await emitted).toEqual(notText('content'));
    }
    const typed = await new Promise((resolve) => socket.emit('send_message', { conversation_id: conversationId, content: 'x', type: { a: 1 } }, resolve));
    expect(typed).toEqual(notText('type'));
    expect((await call('GET', `/api/conversations/${conversationId}/messages`, { as: b.browser })).body.messages).toEqual([]);
  });
});

describe('chattrix push notifications', () => {
  it('gives the VAPID key and stores, then removes, a subscription', async () => {
    const a = await account();
    const key = await call('GET', '/api/vapid-public-key', { as: a.browser });
    expect(key.status).toBe(200);
    expect(key.body).toEqual({ public_key: expect.stringMatching(/^[A-Za-z0-9_-]{80,}$/) });
    const endpoint = `https://fcm.googleapis.com/fcm/send/${uniqueName('ep')}`;
    const subscription = { endpoint, keys: { p256dh: 'BGyyVt9FFV-key', auth: 'R9sidzkcdf-auth' } };
    const saved = await call('POST', '/api/subscribe', { as: a.browser, json: { subscription } });
    expect(saved.status).toBe(200);
    expect(saved.body).toEqual({ success: true, message: 'Subscription saved successfully' });
    const removed = await call('DELETE', '/api/subscribe', { as: a.browser, json: { endpoint } });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ success: true, message: 'Unsubscribed successfully' });
    const again = await call('DELETE', '/api/subscribe', { as: a.browser, json: { endpoint } });
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ success: false, message: 'Push subscription not found', code: 'NOT_FOUND' });
    const incomplete = await call('POST', '/api/subscribe', { as: a.browser, json: { subscription: { endpoint } } });
    expect(incomplete.status).toBe(400);
    expect(incomplete.body.errors).toEqual({ subscription: ['must have endpoint, keys.p256dh and keys.auth'] });
  });
});

describe('chattrix rate limits', () => {
  it('counts each documented limit, with X-RateLimit-* headers and 429 in the seed body', async () => {
    const limited = await startServer({ RATE_LIMITS: 'on' });
    try {
      // Counted per signed-in user (a fresh one, so earlier runs against the same Redis do not count).
      const user = await signUp(limited);
      const signOut = () => call('POST', '/logout', { token: user.accessToken }, limited.url);
      for (let n = 1; n <= 10; n++) {
        const reply = await signOut();
        expect(reply.status).toBe(200);
        expect(reply.headers.get('x-ratelimit-limit')).toBe('10');
        expect(reply.headers.get('x-ratelimit-remaining')).toBe(String(10 - n));
        expect(Number(reply.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
      }
      const refused = await signOut();
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({ success: false, message: expect.stringMatching(/^Rate limit exceeded/), code: 'RATE_LIMITED' });
      expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

      const other = await signUp(limited);
      const limitOf = async (method: string, path: string, options: CallOptions = {}) =>
        (await call(method, path, { token: other.accessToken, ...options }, limited.url)).headers.get('x-ratelimit-limit');
      expect(await limitOf('GET', '/api/vapid-public-key')).toBe('60');
      // Reading history is general use; the messages limit counts writes.
      expect(await limitOf('GET', '/api/conversations/1/messages')).toBe('60');
      expect(await limitOf('POST', '/api/conversations/1/messages', { json: { content: 'x' } })).toBe('100');
      expect(await limitOf('PUT', '/api/messages/99999999', { json: { content: 'x' } })).toBe('100');
      expect(await limitOf('DELETE', '/api/messages/99999999')).toBe('100');
      expect(await limitOf('POST', '/api/upload', { form: formWith({ file: textFile('x', 'x.txt') }) })).toBe('20');
    } finally {
      await limited.stop();
    }
  });
});

describe('chattrix Socket.IO', () => {
  it('refuses a socket without a valid session cookie', async () => {
    const refusal = { success: false, message: expect.any(String), code: 'UNAUTHENTICATED' };
    await expect(connectIo(`${server.url}/chattrix`)).rejects.toMatchObject({ data: refusal });
    await expect(connectIo(`${server.url}/chattrix`, { extraHeaders: { cookie: 'session=forged' } })).rejects.toMatchObject({
      data: { ...refusal, message: 'Access token invalid' },
    });
  });

  it("refuses a handshake from another site's page, and takes one from ours or without an Origin", async () => {
    const a = await account();
    const cookie = a.browser.cookieHeader();
    // The session cookie goes along with a handshake any page opens: the Origin says whose page it is.
    for (const origin of ['https://evil.example', 'null']) {
      await expect(connectIo(`${server.url}/chattrix`, { extraHeaders: { cookie, origin } })).rejects.toMatchObject({
        message: 'Request refused: this origin is not allowed',
        data: CROSS_SITE,
      });
    }
    const ours = await connectIo(`${server.url}/chattrix`, { extraHeaders: { cookie, origin: server.url } });
    sockets.push(ours);
    expect(ours.connected).toBe(true);
    const noOrigin = await socketOf(a);
    expect(noOrigin.connected).toBe(true);
  });

  it("runs the seed's Complete Chat Implementation: messages through the API, typing over the socket", async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    // Conversation 1 of the seed's example is the public `general` room every server makes at
    // its first start, which any signed-in user may read and post in.
    expect((await call('GET', '/api/conversations/1/messages?limit=1', { as: alice.browser })).status).toBe(200);

    const pages = [alice, bob].map((user) => {
      const displayed: any[] = [];
      const typing: ChattrixUser[] = [];
      const stopped: ChattrixUser[] = [];
      let onLog!: (args: unknown[]) => void;
      const logged = new Promise<unknown[]>((resolve) => (onLog = resolve));
      const input = new EventTarget();
      let joinAck!: Promise<unknown>;
      const page = completeChatImplementation({
        // The page's io, acknowledging the join so the test knows when the room is live.
        io: (path) => {
          const socket = user.browser.io(path);
          const emit = socket.emit.bind(socket);
          joinAck = new Promise((resolve) => {
            socket.emit = ((event: string, ...args: unknown[]) =>
              event === 'join_conversation' ? emit(event, ...args, resolve) : emit(event, ...args)) as typeof socket.emit;
          });
          return socket;
        },
        fetch: user.browser.fetch,
        document: { getElementById: (id) => (id === 'messageInput' ? input : new EventTarget()) },
        console: { log: (...args) => onLog(args) },
        displayMessage: (message) => displayed.push(message),
        showTypingIndicator: (u) => typing.push(u),
        hideTypingIndicator: (u) => stopped.push(u),
      });
      return { ...page, user, displayed, typing, stopped, logged, input, joined: joinAck };
    });
    const [alicePage, bobPage] = pages;
    await Promise.all(pages.map((p) => connected(p.socket).then(() => p.joined)));

    const content = `hello from ${alice.username}`;
    const [echoed, shown] = pages.map((p) => nextIo(p.socket, 'new_message', (m) => m.content === content));
    alicePage.sendMessage(content);
    const message = await shown;
    expect(message).toEqual({
      id: expect.any(Number),
      conversation_id: 1,
      sender_id: alice.id,
      sender: brief(alice),
      content,
      type: 'text',
      timestamp: expect.stringMatching(iso),
      edited: false,
      edited_at: null,
      file_url: null,
      file_name: null,
      file_size: null,
    });
    expect(bobPage.displayed).toContainEqual(message);
    expect(await echoed).toEqual(message);
    expect(await alicePage.logged).toEqual(['Message sent via API']);

    // Alice types (she is in the room now, having posted); Bob sees it start and, a second after her last keystroke, stop.
    const ownTyping = recordIo(alicePage.socket, 'user_typing');
    const started = nextIo(bobPage.socket, 'user_typing', (d) => d.user.id === alice.id);
    const stopped = nextIo(bobPage.socket, 'user_stopped_typing', (d) => d.user.id === alice.id);
    alicePage.input.dispatchEvent(new Event('input'));
    expect(await started).toEqual({ user: brief(alice), conversation_id: 1 });
    expect(bobPage.typing).toContainEqual(brief(alice));
    expect(await stopped).toEqual({ user: brief(alice), conversation_id: 1 });
    expect(bobPage.stopped).toContainEqual(brief(alice));
    expect(ownTyping.filter((d) => d.user.id === alice.id)).toEqual([]);
  });

  it("runs the seed's File Upload with Progress: upload, then a file message the room receives", async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(alice, bob);
    const bobSocket = await socketOf(bob);
    await join(bobSocket, conversationId);
    const received = nextIo(bobSocket, 'new_message');

    // The page's fetch sends no X-Requested-With here, as published; the browser's Origin vouches for it.
    const uploadFile = fileUploadWithProgress({ fetch: alice.browser.fetch });
    const response = await uploadFile(textFile('quarterly numbers', 'document.txt'), conversationId);
    expect(response!.status).toBe(201);
    const { message_data } = await response!.json();
    expect(message_data).toEqual({
      id: expect.any(Number),
      conversation_id: conversationId,
      sender_id: alice.id,
      content: 'Shared a file: document.txt',
      type: 'file',
      timestamp: expect.stringMatching(iso),
      file_url: expect.stringMatching(/\/files\/\d+\/document\.txt\?/),
      file_name: 'document.txt',
      file_size: 17,
    });
    expect(await received).toEqual({ ...message_data, sender: brief(alice), edited: false, edited_at: null, file_url: expect.stringMatching(/\/files\/\d+\/document\.txt\?/) });
  });

  it('delivers edits, deletions and socket sends to the room; leaving stops them', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const [aSocket, bSocket] = await Promise.all([socketOf(a), socketOf(b)]);
    await Promise.all([join(aSocket, conversationId), join(bSocket, conversationId)]);

    const arrived = nextIo(aSocket, 'new_message');
    bSocket.emit('send_message', { conversation_id: conversationId, content: 'Hello world!', type: 'text' });
    const message = await arrived;
    expect(message).toEqual({
      id: expect.any(Number),
      conversation_id: conversationId,
      sender_id: b.id,
      sender: brief(b),
      content: 'Hello world!',
      type: 'text',
      timestamp: expect.stringMatching(iso),
      edited: false,
      edited_at: null,
      file_url: null,
      file_name: null,
      file_size: null,
    });

    const edited = nextIo(aSocket, 'message_edited');
    await call('PUT', `/api/messages/${message.id}`, { as: b.browser, json: { content: 'Hello, world!' } });
    expect(await edited).toEqual({ ...message, content: 'Hello, world!', edited: true, edited_at: expect.stringMatching(iso) });
    const deleted = nextIo(aSocket, 'message_deleted');
    await call('DELETE', `/api/messages/${message.id}`, { as: b.browser });
    expect(await deleted).toEqual({ message_id: message.id, conversation_id: conversationId });

    const messages = recordIo(aSocket, 'new_message');
    await new Promise((resolve) => aSocket.emit('leave_conversation', { conversation_id: conversationId }, resolve));
    await send(b, conversationId, 'while away');
    await join(aSocket, conversationId);
    const back = nextIo(aSocket, 'new_message');
    await send(b, conversationId, 'welcome back');
    expect((await back).content).toBe('welcome back');
    expect(messages.map((m) => m.content)).toEqual(['welcome back']);
  });

  it('announces conversation updates, reads and the presence of contacts', async () => {
    const [a, b] = await Promise.all([account(), account()]);
    const conversationId = await privateConversation(a, b);
    const aSocket = await socketOf(a);
    const online = nextIo(aSocket, 'user_online');
    const bSocket = await socketOf(b);
    expect(await online).toEqual({ user: brief(b) });

    const updated = nextIo(aSocket, 'conversation_updated', (c) => c.unread_count === 1);
    const message = await send(b, conversationId, 'Hey, how are you?');
    expect(await updated).toEqual({
      id: conversationId,
      type: 'private',
      participants: expect.arrayContaining([brief(a), brief(b)]),
      last_message: { id: message.id, content: 'Hey, how are you?', sender_id: b.id, sender_name: b.display_name, timestamp: message.timestamp, type: 'text' },
      unread_count: 1,
      updated_at: expect.stringMatching(iso),
    });

    const read = nextIo(aSocket, 'conversation_updated', (c) => c.unread_count === 0);
    aSocket.emit('mark_as_read', { conversation_id: conversationId, message_id: message.id });
    expect((await read).id).toBe(conversationId);
    const list = await call('GET', '/api/conversations', { as: a.browser });
    expect(list.body.conversations.find((c: any) => c.id === conversationId).unread_count).toBe(0);

    const offline = nextIo(aSocket, 'user_offline');
    bSocket.close();
    expect(await offline).toEqual({ user: brief(b) });
  });

  it("emits error with the seed's error body for a refused event", async () => {
    const [a, b, stranger] = await Promise.all([account(), account(), account()]);
    const conversationId = await privateConversation(a, b);
    const socket = await socketOf(stranger);
    const refused = nextIo(socket, 'error');
    socket.emit('join_conversation', { conversation_id: conversationId });
    expect(await refused).toEqual({ success: false, message: 'You are not a participant of this conversation', code: 'FORBIDDEN' });
    const aSocket = await socketOf(a);
    const empty = nextIo(aSocket, 'error');
    aSocket.emit('send_message', { conversation_id: conversationId, content: '', type: 'text' });
    expect(await empty).toEqual(invalid('content', 'must not be empty'));
    const typing = nextIo(socket, 'error');
    socket.emit('typing_start', { conversation_id: conversationId });
    expect((await typing).code).toBe('FORBIDDEN');
  });
});
