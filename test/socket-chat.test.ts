import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatAPI, ChatService } from './seed-clients/socket-chat.js';
import { connectIo, nextIo, recordIo } from './helpers/sockets.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { signUp } from './helpers/clients.ts';

let server: TestServer;
const sockets: Socket[] = [];
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface LoggedIn {
  email: string;
  name: string;
  token: string;
}

async function api(path: string, init: RequestInit & { token?: string } = {}) {
  const res = await fetch(`${server.url}/socket-chat${path}`, {
    ...init,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** POST /api/messages/send as a JSON client does. */
function sendRest(token: string, body: unknown) {
  return api('/api/messages/send', { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The seed's login: a form post of email and name (and a password, for accounts with one). */
async function login(fields: Record<string, string> = {}): Promise<LoggedIn> {
  const email = fields.email ?? `${uniqueName('sc')}@example.com`;
  const name = fields.name ?? `Name ${email}`;
  const { status, body } = await api('/api/auth/login', { method: 'POST', body: new URLSearchParams({ email, name, ...fields }) });
  expect(status).toBe(200);
  return { email, name, token: body.access_token };
}

async function socketFor(user: LoggedIn): Promise<Socket> {
  const socket = await connectIo(`${server.url}/socket-chat`, { auth: { token: user.token } });
  sockets.push(socket);
  return socket;
}

beforeAll(async () => {
  server = await startServer({ AUTH_PASSWORDLESS_EMAIL_LOGIN: 'true' });
  process.env.SEED_BASE_URL = server.url;
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  await server?.stop();
});

describe('socket-chat REST', () => {
  it('logs in by email, creating the account the first time and returning the same one later', async () => {
    const email = `${uniqueName('first')}@example.com`;
    const form = new URLSearchParams({ email, name: 'John Doe', profile_image: 'https://example.com/profile.jpg' });
    const first = await api('/api/auth/login', { method: 'POST', body: form });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      user: { email, name: 'John Doe', profile_image: 'https://example.com/profile.jpg' },
    });
    const again = await api('/api/auth/login', { method: 'POST', body: form });
    expect(again.body.user).toEqual(first.body.user);
    const me = await api('/api/users/me', { token: again.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ email, name: 'John Doe', profile_image: 'https://example.com/profile.jpg', is_online: false, last_seen: null });
  });

  it('accepts JSON as well as the form, and a password for accounts that have one', async () => {
    const email = `${uniqueName('pw')}@example.com`;
    const created = await api('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, name: 'Pat', password: 'a long password' }),
    });
    expect(created.status).toBe(200);
    const withoutPassword = await api('/api/auth/login', { method: 'POST', body: new URLSearchParams({ email }) });
    expect(withoutPassword.status).toBe(401);
    expect(withoutPassword.body).toEqual({ detail: expect.stringMatching(/password/) });
    const wrong = await api('/api/auth/login', { method: 'POST', body: new URLSearchParams({ email, password: 'not the password' }) });
    expect(wrong.status).toBe(401);
    const right = await api('/api/auth/login', { method: 'POST', body: new URLSearchParams({ email, password: 'a long password' }) });
    expect(right.status).toBe(200);
    expect(right.body.user.name).toBe('Pat');
  });

  it('refuses a bad email with 422 and the detail body', async () => {
    const { status, body } = await api('/api/auth/login', { method: 'POST', body: new URLSearchParams({ email: 'not-an-email' }) });
    expect(status).toBe(422);
    expect(body).toEqual({ detail: expect.stringContaining('email') });
  });

  it('answers 401 with detail without a valid token', async () => {
    for (const path of ['/api/users/me', '/api/conversations', '/api/users/search?query=x']) {
      const { status, body } = await api(path, { token: 'not-a-token' });
      expect(status).toBe(401);
      expect(body).toEqual({ detail: expect.any(String) });
    }
  });

  it('searches users by email or name, without the searcher', async () => {
    const tag = uniqueName('findme');
    const [me, other] = await Promise.all([login({ name: `${tag} Me` }), login({ name: `${tag} Other` })]);
    const { status, body } = await api(`/api/users/search?query=${tag}`, { token: me.token });
    expect(status).toBe(200);
    expect(body).toEqual([{ email: other.email, name: other.name, profile_image: null, is_online: false }]);
    const byEmail = await api(`/api/users/search?query=${encodeURIComponent(other.email)}`, { token: me.token });
    expect(byEmail.body.map((u: any) => u.email)).toEqual([other.email]);
    const missing = await api('/api/users/search', { token: me.token });
    expect(missing.status).toBe(422);
  });

  it('starts a conversation by email (the same one twice), sends, lists, pages and marks read', async () => {
    const [a, b] = await Promise.all([login(), login()]);
    const start = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: b.email }) });
    expect(start.status).toBe(200);
    expect(start.body).toEqual({ conversation_id: expect.stringMatching(/^\d+$/), participants: expect.arrayContaining([a.email, b.email]) });
    const again = await api('/api/conversations/start', { method: 'POST', token: b.token, body: new URLSearchParams({ to_email: a.email }) });
    expect(again.body.conversation_id).toBe(start.body.conversation_id);
    const conversationId = start.body.conversation_id;

    const first = await sendRest(b.token, { to_email: a.email, message: 'Hello there!', message_type: 'text' });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      id: expect.stringMatching(/^\d+$/),
      conversation_id: conversationId,
      sender_email: b.email,
      sender_name: b.name,
      message: 'Hello there!',
      timestamp: expect.stringMatching(iso),
      message_type: 'text',
      reply_to: null,
    });
    const reply = await sendRest(a.token, { to_email: b.email, message: 'Hi! How are you?', message_type: 'text', reply_to: first.body.id });
    expect(reply.body.reply_to).toBe(first.body.id);

    const list = await api('/api/conversations', { token: a.token });
    expect(list.status).toBe(200);
    expect(list.body).toContainEqual({
      conversation_id: conversationId,
      participants: expect.arrayContaining([a.email, b.email]),
      last_message: 'Hi! How are you?',
      last_message_time: reply.body.timestamp,
      last_message_sender: a.email,
      unread_count: 1,
    });
    const bList = await api('/api/conversations', { token: b.token });
    expect(bList.body.find((c: any) => c.conversation_id === conversationId).unread_count).toBe(1);

    const history = await api(`/api/conversations/${conversationId}/messages?skip=0&limit=20`, { token: b.token });
    expect(history.status).toBe(200);
    expect(history.body).toEqual([
      { ...first.body, edited: false },
      { ...reply.body, edited: false },
    ]);
    const older = await api(`/api/conversations/${conversationId}/messages?skip=1&limit=1`, { token: b.token });
    expect(older.body.map((m: any) => m.id)).toEqual([first.body.id]);

    const read = await api(`/api/conversations/${conversationId}/mark-read`, { method: 'POST', token: b.token });
    expect(read).toEqual({ status: 200, body: { message: 'Conversation marked as read' } });
    const after = await api('/api/conversations', { token: b.token });
    expect(after.body.find((c: any) => c.conversation_id === conversationId).unread_count).toBe(0);
  });

  it('answers the documented errors with detail', async () => {
    const [a, stranger] = await Promise.all([login(), login()]);
    const missing = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: 'nobody@nowhere.example' }) });
    expect(missing).toEqual({ status: 404, body: { detail: 'User not found' } });
    const self = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: a.email }) });
    expect(self.status).toBe(422);
    const b = await login();
    const { body: conv } = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: b.email }) });
    const forbidden = await api(`/api/conversations/${conv.conversation_id}/messages`, { token: stranger.token });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({ detail: expect.any(String) });
    const unknown = await api('/api/conversations/99999999/messages', { token: a.token });
    expect(unknown.status).toBe(404);
    const empty = await sendRest(a.token, { to_email: b.email, message: '   ' });
    expect(empty.status).toBe(422);
    expect(empty.body.detail).toMatch(/^message: /);
    const badType = await sendRest(a.token, { to_email: b.email, message: 'x', message_type: 'sticker' });
    expect(badType.status).toBe(422);
    expect(badType.body.detail).toMatch(/message_type/);
    const badPage = await api(`/api/conversations/${conv.conversation_id}/messages?limit=0`, { token: a.token });
    expect(badPage.status).toBe(422);
    // Refused fields are named as socket-chat's clients name them.
    expect(await sendRest(a.token, { to_email: b.email, message: 'x', reply_to: '987654321' })).toEqual({
      status: 422,
      body: { detail: 'reply_to: no such message' },
    });
    expect(await sendRest(a.token, { to_email: [b.email], message: 'x' })).toEqual({ status: 422, body: { detail: 'to_email: must be a string' } });
    expect(await sendRest(a.token, { to_email: b.email, message: { text: 'x' } })).toEqual({ status: 422, body: { detail: 'message: must be a string' } });
  });

  it('reports health', async () => {
    const { status, body } = await api('/health');
    expect(status).toBe(200);
    expect(body).toEqual({ status: 'healthy' });
  });

  it('email-only login is refused with a clear 401 unless the operator allows it', async () => {
    const strict = await startServer();
    try {
      const res = await fetch(`${strict.url}/socket-chat/api/auth/login`, {
        method: 'POST',
        body: new URLSearchParams({ email: `${uniqueName('x')}@example.com`, name: 'X' }),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: expect.stringMatching(/email alone is turned off/) });
      const withPassword = await fetch(`${strict.url}/socket-chat/api/auth/login`, {
        method: 'POST',
        body: new URLSearchParams({ email: `${uniqueName('y')}@example.com`, password: 'a long password' }),
      });
      expect(withPassword.status).toBe(200);
    } finally {
      await strict.stop();
    }
  });
});

describe('socket-chat Socket.IO', () => {
  it('refuses a socket without a valid token', async () => {
    await expect(connectIo(`${server.url}/socket-chat`, { auth: { token: 'nope' } })).rejects.toMatchObject({
      data: { message: 'User not authenticated' },
    });
    await expect(connectIo(`${server.url}/socket-chat`)).rejects.toMatchObject({ data: { message: 'User not authenticated' } });
  });

  it("runs the seed's ChatService and ChatAPI: messages, notifications, typing", async () => {
    const [a, b] = await Promise.all([login(), login()]);
    const received: any[] = [];
    const typing: any[] = [];
    class App extends ChatService {
      handleNewMessage(message: any) {
        received.push(message);
      }
      handleTypingIndicator(data: any) {
        typing.push(data);
      }
    }
    const bob = new App(b.token);
    sockets.push(bob.socket);
    await nextIo(bob.socket, 'connect');
    const notified = nextIo(bob.socket, 'message_notification');
    const newMessage = nextIo(bob.socket, 'new_message');

    const aliceApi = new ChatAPI(a.token);
    const sent = await aliceApi.sendMessage(b.email, 'Hello there!');
    expect(sent.message).toBe('Hello there!');
    expect(await newMessage).toEqual({
      id: sent.id,
      conversation_id: sent.conversation_id,
      sender_email: a.email,
      sender_name: a.name,
      message: 'Hello there!',
      timestamp: sent.timestamp,
      message_type: 'text',
      reply_to: null,
    });
    expect(received).toContainEqual(expect.objectContaining({ id: sent.id }));
    expect(await notified).toEqual({ conversation_id: sent.conversation_id, sender_email: a.email, sender_name: a.name, message: 'Hello there!' });

    const alice = new App(a.token);
    sockets.push(alice.socket);
    await nextIo(alice.socket, 'connect');
    const joined = nextIo(bob.socket, 'joined_conversation');
    bob.joinConversation(sent.conversation_id);
    expect(await joined).toEqual({ conversation_id: sent.conversation_id });
    const typingEvent = nextIo(bob.socket, 'user_typing');
    alice.startTyping(sent.conversation_id);
    expect(await typingEvent).toEqual({ conversation_id: sent.conversation_id, user_email: a.email, typing: true });
    const stopped = nextIo(bob.socket, 'user_typing', (d) => d.typing === false);
    alice.stopTyping(sent.conversation_id);
    expect(await stopped).toEqual({ conversation_id: sent.conversation_id, user_email: a.email, typing: false });
    expect(typing).toHaveLength(2);

    const viaSocket = nextIo(bob.socket, 'new_message', (m) => m.message === 'over the socket');
    alice.sendMessage(b.email, 'over the socket');
    expect((await viaSocket).sender_email).toBe(a.email);

    expect((await aliceApi.getConversations()).map((c: any) => c.conversation_id)).toContain(sent.conversation_id);
    const page = await aliceApi.getMessages(sent.conversation_id, 0, 50);
    expect(page.map((m: any) => m.message)).toEqual(['Hello there!', 'over the socket']);
    expect(await aliceApi.searchUsers(b.email)).toEqual([expect.objectContaining({ email: b.email })]);
  });

  it('marks as read, lists online users, announces online and offline, leaves rooms', async () => {
    const [a, b] = await Promise.all([login(), login()]);
    const { body: conv } = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: b.email }) });
    const aSocket = await socketFor(a);
    const online = nextIo(aSocket, 'user_online');
    const bSocket = await socketFor(b);
    expect(await online).toEqual({ email: b.email });

    const list = nextIo(aSocket, 'online_users');
    aSocket.emit('get_online_users');
    expect(await list).toEqual({ users: [b.email] });

    const joined = nextIo(aSocket, 'joined_conversation');
    aSocket.emit('join_conversation', { conversation_id: conv.conversation_id });
    await joined;
    await sendRest(a.token, { to_email: b.email, message: 'read me' });
    const read = nextIo(aSocket, 'marked_as_read');
    bSocket.emit('mark_as_read', { conversation_id: conv.conversation_id });
    expect(await read).toEqual({ conversation_id: conv.conversation_id, user_email: b.email });

    const left = nextIo(aSocket, 'left_conversation');
    aSocket.emit('leave_conversation', { conversation_id: conv.conversation_id });
    expect(await left).toEqual({ conversation_id: conv.conversation_id });
    const typingAfterLeave = recordIo(aSocket, 'user_typing');
    // A second conversation that A still follows is the barrier: B types in the left one, then
    // in this one; the second typing event arriving shows the first had its chance.
    const c = await login();
    const { body: other } = await api('/api/conversations/start', { method: 'POST', token: c.token, body: new URLSearchParams({ to_email: a.email }) });
    await api(`/api/conversations/${other.conversation_id}/mark-read`, { method: 'POST', token: c.token });
    const cSocket = await socketFor(c);
    await aSocket.emitWithAck('join_conversation', { conversation_id: other.conversation_id });
    const barrier = nextIo(aSocket, 'user_typing', (d) => d.conversation_id === other.conversation_id);
    await bSocket.emitWithAck('typing_start', { conversation_id: conv.conversation_id });
    await cSocket.emitWithAck('typing_start', { conversation_id: other.conversation_id });
    await barrier;
    expect(typingAfterLeave.filter((d) => d.conversation_id === conv.conversation_id)).toEqual([]);

    const offline = nextIo(aSocket, 'user_offline', (d) => d.email === b.email);
    bSocket.close();
    expect(await offline).toEqual({ email: b.email });
  });

  it("emits error with the seed's message for a failed event, and refuses strangers' rooms", async () => {
    const [a, b, stranger] = await Promise.all([login(), login(), login()]);
    const { body: conv } = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: b.email }) });
    const socket = await socketFor(stranger);
    const failed = nextIo(socket, 'error');
    socket.emit('send_message', { to_email: 'nobody@nowhere.example', message: 'hi' });
    expect(await failed).toEqual({ message: 'User not found' });
    const refused = nextIo(socket, 'error');
    socket.emit('join_conversation', { conversation_id: conv.conversation_id });
    expect(await refused).toEqual({ message: expect.stringMatching(/participant/) });
  });

  it('shows a username where an account keeps its email private, and reaches it by that name', async () => {
    const privateEmail = `${uniqueName('private')}@example.com`;
    const graphqlUser = await signUp(server, { email: privateEmail });
    const a = await login();
    // A private email finds nobody: an address cannot be tested for an account.
    const byEmail = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: privateEmail }) });
    expect(byEmail).toEqual({ status: 404, body: { detail: 'User not found' } });
    const start = await api('/api/conversations/start', { method: 'POST', token: a.token, body: new URLSearchParams({ to_email: graphqlUser.username }) });
    expect(start.status).toBe(200);
    expect(start.body.participants).toEqual(expect.arrayContaining([a.email, graphqlUser.username]));
  });
});
