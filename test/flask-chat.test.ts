import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIo, connected, nextIo, recordIo } from './helpers/sockets.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';

let server: TestServer;
const sockets: Socket[] = [];
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const admin = { username: uniqueName('admin'), password: 'the admin password' };

interface Account {
  id: number;
  username: string;
  email: string;
  password: string;
  token: string;
}

async function api(path: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const res = await fetch(`${server.url}/flask-chat/api${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function login(username: string, password: string): Promise<string> {
  const { status, body } = await api('/auth/login', { method: 'POST', body: { username, password } });
  expect(status).toBe(200);
  return body.access_token;
}

/** A new account, registered and signed in as the seed's client would. */
async function account(): Promise<Account> {
  const username = uniqueName('fc');
  const email = `${username}@example.com`;
  const password = 'correct horse battery';
  const { status, body } = await api('/auth/register', { method: 'POST', body: { username, email, password } });
  expect(status).toBe(201);
  return { id: body.user.id, username, email, password, token: await login(username, password) };
}

async function socketFor(user: Account, how: 'auth' | 'query' = 'auth'): Promise<Socket> {
  const options = how === 'auth' ? { auth: { token: user.token } } : { query: { token: user.token } };
  const socket = await connectIo(`${server.url}/flask-chat`, options);
  sockets.push(socket);
  return socket;
}

/** A socket that has joined the public chat (its own `user_joined` says so). */
async function inPublicChat(user: Account): Promise<Socket> {
  const socket = await socketFor(user);
  const joined = nextIo(socket, 'user_joined', (e) => e.user.id === user.id);
  socket.emit('join_public');
  await joined;
  return socket;
}

async function graphql(token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const result = (await res.json()) as any;
  expect(result.errors).toBeUndefined();
  return result.data;
}

const publicMessage = (content: string, user: Account) => ({
  id: expect.any(Number),
  content,
  timestamp: expect.stringMatching(iso),
  user_id: user.id,
  username: user.username,
  avatar_url: null,
});

beforeAll(async () => {
  server = await startServer({ ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password });
  process.env.SEED_BASE_URL = server.url;
});
afterAll(async () => {
  for (const socket of sockets) socket.close();
  await server?.stop();
});

describe('flask-chat auth', () => {
  it('registers with and without an avatar, logs in and out', async () => {
    const username = uniqueName('john');
    const email = `${username}@example.com`;
    const registered = await api('/auth/register', {
      method: 'POST',
      body: { username, email, password: 'a good password', avatar_url: 'http://example.com/avatar.jpg' },
    });
    expect(registered).toEqual({
      status: 201,
      body: {
        message: 'User registered successfully',
        user: { id: expect.any(Number), username, email, avatar_url: 'http://example.com/avatar.jpg' },
      },
    });
    const plain = await api('/auth/register', {
      method: 'POST',
      body: { username: `${username}_2`, email: `2${email}`, password: 'a good password' },
    });
    expect(plain.status).toBe(201);
    expect(plain.body.user).toEqual({ id: expect.any(Number), username: `${username}_2`, email: `2${email}`, avatar_url: null });

    const loggedIn = await api('/auth/login', { method: 'POST', body: { username, password: 'a good password' } });
    expect(loggedIn).toEqual({
      status: 200,
      body: { message: 'Login successful', access_token: expect.any(String), user: registered.body.user },
    });
    const token = loggedIn.body.access_token;
    expect((await api('/messages', { token })).status).toBe(200);
    expect(await api('/auth/logout', { method: 'POST', token })).toEqual({ status: 200, body: { message: 'Logout successful' } });
    expect(await api('/messages', { token })).toEqual({ status: 401, body: { message: 'Session ended; sign in again' } });
  });

  it('refuses missing fields, taken names and bad avatars with 400, and wrong passwords with 401', async () => {
    const taken = await account();
    expect(await api('/auth/register', { method: 'POST', body: { username: uniqueName('x'), password: 'a good password' } })).toEqual({
      status: 400,
      body: { message: 'email: is required' },
    });
    const sameName = await api('/auth/register', {
      method: 'POST',
      body: { username: taken.username, email: `${uniqueName('y')}@example.com`, password: 'a good password' },
    });
    expect(sameName).toEqual({ status: 400, body: { message: 'This username is already taken' } });
    const sameEmail = await api('/auth/register', {
      method: 'POST',
      body: { username: uniqueName('z'), email: taken.email, password: 'a good password' },
    });
    expect(sameEmail).toEqual({ status: 400, body: { message: 'This email is already taken' } });

    const username = uniqueName('avatar');
    const fields = { username, email: `${username}@example.com`, password: 'a good password' };
    const badAvatar = await api('/auth/register', { method: 'POST', body: { ...fields, avatar_url: 'not a url' } });
    expect(badAvatar).toEqual({ status: 400, body: { message: 'avatar_url: must be a URL' } });
    // The refused registration left nothing behind: the same name registers now.
    expect((await api('/auth/register', { method: 'POST', body: fields })).status).toBe(201);

    for (const body of [{ username: taken.username, password: 'not the password' }, { username: uniqueName('nobody'), password: 'whatever it is' }]) {
      expect(await api('/auth/login', { method: 'POST', body })).toEqual({ status: 401, body: { message: 'Invalid credentials' } });
    }
    expect(await api('/auth/login', { method: 'POST', body: { username: taken.username } })).toEqual({
      status: 400,
      body: { message: 'password: is required' },
    });
  });

  it('answers 401 with the message body without a valid token, and 404/405 for unknown routes', async () => {
    for (const path of ['/messages', '/messages/private/1', '/files/', '/files/1', '/users/', '/users/1']) {
      expect(await api(path, { token: 'not-a-token' })).toEqual({ status: 401, body: { message: 'Access token invalid' } });
    }
    expect(await api('/nowhere')).toEqual({ status: 404, body: { message: 'Not found' } });
    expect(await api('/auth/login')).toEqual({ status: 405, body: { message: 'Method not allowed' } });
  });
});

describe('flask-chat public messages', () => {
  it('creates, lists oldest first, and deletes only your own', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const tag = uniqueName('hello');
    const first = await api('/messages', { method: 'POST', token: alice.token, body: { content: `${tag} everyone!` } });
    expect(first).toEqual({ status: 201, body: publicMessage(`${tag} everyone!`, alice) });
    const second = await api('/messages', { method: 'POST', token: bob.token, body: { content: `${tag} back` } });
    expect(second.body).toEqual(publicMessage(`${tag} back`, bob));

    const list = await api('/messages', { token: bob.token });
    expect(list.status).toBe(200);
    expect(Object.keys(list.body)).toEqual(['messages']);
    expect(list.body.messages.filter((m: any) => m.content.startsWith(tag))).toEqual([first.body, second.body]);
    const ids = list.body.messages.map((m: any) => m.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const one = await api('/messages?limit=1', { token: bob.token });
    expect(one.body.messages).toEqual([second.body]);
    expect((await api('/messages?limit=501', { token: bob.token })).body).toEqual({ message: 'limit: must be an integer from 1 to 500' });

    expect(await api(`/messages/${first.body.id}`, { method: 'DELETE', token: bob.token })).toEqual({
      status: 403,
      body: { message: 'Can only delete own messages' },
    });
    expect(await api(`/messages/${first.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 200,
      body: { message: 'Message deleted' },
    });
    expect(await api(`/messages/${first.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 404,
      body: { message: 'Message not found' },
    });
    const after = await api('/messages', { token: alice.token });
    expect(after.body.messages.filter((m: any) => m.content.startsWith(tag))).toEqual([second.body]);
  });

  it('refuses an empty message and a private message by the public route', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    expect(await api('/messages', { method: 'POST', token: alice.token, body: {} })).toEqual({ status: 400, body: { message: 'content: is required' } });
    expect(await api('/messages', { method: 'POST', token: alice.token, body: { content: '   ' } })).toEqual({
      status: 400,
      body: { message: 'content: must not be empty' },
    });
    const secret = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'just us' } });
    expect(await api(`/messages/${secret.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 404,
      body: { message: 'Message not found' },
    });
    expect(await api('/messages/99999999', { method: 'DELETE', token: alice.token })).toEqual({ status: 404, body: { message: 'Message not found' } });
  });
});

describe('flask-chat private messages', () => {
  it('sends and lists by other_user_id, in one chat for both users', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const sent = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'Private message' } });
    expect(sent).toEqual({
      status: 201,
      body: {
        id: expect.any(Number),
        content: 'Private message',
        timestamp: expect.stringMatching(iso),
        sender_id: alice.id,
        chat_id: expect.any(Number),
        username: alice.username,
        avatar_url: null,
      },
    });
    const reply = await api(`/messages/private/${alice.id}`, { method: 'POST', token: bob.token, body: { content: 'Private reply' } });
    expect(reply.body).toEqual({
      id: expect.any(Number),
      content: 'Private reply',
      timestamp: expect.stringMatching(iso),
      sender_id: bob.id,
      chat_id: sent.body.chat_id,
      username: bob.username,
      avatar_url: null,
    });

    for (const [me, other] of [[alice, bob], [bob, alice]]) {
      expect(await api(`/messages/private/${other.id}`, { token: me.token })).toEqual({ status: 200, body: { messages: [sent.body, reply.body] } });
    }
    const carol = await account();
    expect(await api(`/messages/private/${alice.id}`, { token: carol.token })).toEqual({ status: 200, body: { messages: [] } });
  });

  it('refuses yourself, unknown users, messages of another chat and others’ messages', async () => {
    const [alice, bob, carol] = await Promise.all([account(), account(), account()]);
    expect(await api(`/messages/private/${alice.id}`, { method: 'POST', token: alice.token, body: { content: 'me' } })).toEqual({
      status: 400,
      body: { message: 'Cannot send message to yourself' },
    });
    expect(await api('/messages/private/99999999', { method: 'POST', token: alice.token, body: { content: 'hi' } })).toEqual({
      status: 404,
      body: { message: 'User not found' },
    });
    const sent = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'to bob' } });
    expect(await api(`/messages/private/${carol.id}/${sent.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 404,
      body: { message: 'Message not found or invalid chat' },
    });
    expect(await api(`/messages/private/${alice.id}/${sent.body.id}`, { method: 'DELETE', token: bob.token })).toEqual({
      status: 403,
      body: { message: 'Can only delete own messages' },
    });
    expect(await api(`/messages/private/${bob.id}/${sent.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 200,
      body: { message: 'Message deleted' },
    });
    expect((await api(`/messages/private/${bob.id}`, { token: alice.token })).body).toEqual({ messages: [] });
  });
});

describe('flask-chat private chats are made only by writing or joining', () => {
  const CONVERSATIONS = 'query { conversations(first: 100) { edges { node { id kind participants { id } } } } }';

  it('reads, deletes and leaves without making a chat appear in either user’s list', async () => {
    const [alice, bob, stranger] = await Promise.all([account(), account(), account()]);
    const sent = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'just us' } });
    const [aliceBefore, strangerBefore] = await Promise.all([graphql(alice.token, CONVERSATIONS), graphql(stranger.token, CONVERSATIONS)]);
    expect(aliceBefore.conversations.edges).toContainEqual({
      node: { id: String(sent.body.chat_id), kind: 'DIRECT', participants: expect.arrayContaining([{ id: String(alice.id) }, { id: String(bob.id) }]) },
    });

    // Checked after each step, so each of them is shown to make nothing.
    const unchanged = async () => {
      expect(await graphql(alice.token, CONVERSATIONS)).toEqual(aliceBefore);
      expect(await graphql(stranger.token, CONVERSATIONS)).toEqual(strangerBefore);
    };
    expect(await api(`/messages/private/${alice.id}`, { token: stranger.token })).toEqual({ status: 200, body: { messages: [] } });
    await unchanged();
    expect(await api(`/messages/private/${alice.id}/${sent.body.id}`, { method: 'DELETE', token: stranger.token })).toEqual({
      status: 404,
      body: { message: 'Message not found or invalid chat' },
    });
    await unchanged();
    const socket = await socketFor(stranger);
    const errors = recordIo(socket, 'error');
    expect(await socket.emitWithAck('leave_private', { other_user_id: alice.id })).toEqual({ success: true });
    expect(errors).toEqual([]);
    await unchanged();
    expect(await api(`/messages/private/${stranger.id}`, { token: alice.token })).toEqual({ status: 200, body: { messages: [] } });
    await unchanged();
  });

  it('answers reads and deletes for yourself and unknown users as the seed does', async () => {
    const alice = await account();
    expect(await api('/messages/private/99999999', { token: alice.token })).toEqual({ status: 404, body: { message: 'User not found' } });
    expect(await api(`/messages/private/${alice.id}`, { token: alice.token })).toEqual({
      status: 400,
      body: { message: 'Cannot send message to yourself' },
    });
    for (const other of [99999999, alice.id]) {
      expect(await api(`/messages/private/${other}/1`, { method: 'DELETE', token: alice.token })).toEqual({
        status: 404,
        body: { message: 'Message not found or invalid chat' },
      });
    }
  });
});

describe('flask-chat input types', () => {
  it('refuses arrays, objects and booleans where the seed expects text, naming the field', async () => {
    const alice = await account();
    const username = uniqueName('typed');
    const fields = { username, email: `${username}@example.com`, password: 'a good password' };
    const refused = (field: string) => ({ status: 400, body: { message: `${field}: must be a string` } });
    expect(await api('/auth/register', { method: 'POST', body: { ...fields, username: [username] } })).toEqual(refused('username'));
    expect(await api('/auth/register', { method: 'POST', body: { ...fields, email: { address: fields.email } } })).toEqual(refused('email'));
    expect(await api('/auth/register', { method: 'POST', body: { ...fields, password: true } })).toEqual(refused('password'));
    expect(await api('/auth/register', { method: 'POST', body: { ...fields, avatar_url: ['http://example.com/a.png'] } })).toEqual(refused('avatar_url'));
    expect(await api('/auth/login', { method: 'POST', body: { username: [alice.username], password: alice.password } })).toEqual(refused('username'));
    expect(await api('/auth/login', { method: 'POST', body: { username: alice.username, password: [alice.password] } })).toEqual(refused('password'));
    expect(await api(`/users/${alice.id}`, { method: 'PUT', token: alice.token, body: { username: [uniqueName('x')] } })).toEqual(refused('username'));
    expect(await api(`/users/${alice.id}`, { method: 'PUT', token: alice.token, body: { email: false } })).toEqual(refused('email'));
    // None of those went through: the name is still free and Alice unchanged.
    expect((await api('/auth/register', { method: 'POST', body: fields })).status).toBe(201);
    expect((await api(`/users/${alice.id}`, { token: alice.token })).body.user).toEqual({
      id: alice.id,
      username: alice.username,
      email: alice.email,
      avatar_url: null,
      created_at: expect.stringMatching(iso),
    });
  });

  it('takes ids and sizes as integers or strings of digits, and refuses anything else', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const message = await api('/messages', { method: 'POST', token: alice.token, body: { content: 'typed files' } });
    const chat = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'typed chat' } });
    const file = { filename: 'a.png', file_url: 'http://example.com/a.png', file_size: 10, public_message_id: message.body.id };
    const post = (body: Record<string, unknown>) => api('/files/', { method: 'POST', token: alice.token, body });
    const notInteger = (field: string) => ({ status: 400, body: { message: `${field}: must be an integer` } });

    for (const size of [true, [10], { size: 10 }, 10.5, '10.5', ' 10', '1e3']) {
      expect(await post({ ...file, file_size: size })).toEqual(notInteger('file_size'));
    }
    expect(await post({ ...file, public_message_id: [message.body.id] })).toEqual(notInteger('public_message_id'));
    expect(await post({ ...file, public_message_id: true })).toEqual(notInteger('public_message_id'));
    const { public_message_id: _, ...chatFile } = file;
    expect(await post({ ...chatFile, private_chat_id: [chat.body.chat_id] })).toEqual(notInteger('private_chat_id'));
    expect(await post({ ...chatFile, private_chat_id: { id: chat.body.chat_id } })).toEqual(notInteger('private_chat_id'));
    expect(await post({ ...file, filename: ['a.png'] })).toEqual({ status: 400, body: { message: 'filename: must be a string' } });
    expect(await post({ ...file, file_url: { href: 'http://example.com/a.png' } })).toEqual({ status: 400, body: { message: 'file_url: must be a string' } });
    // Nothing was recorded by the refused requests.
    expect(await api('/files/', { token: alice.token })).toEqual({ status: 200, body: [] });

    const asText = await post({ ...file, file_size: '2048', public_message_id: String(message.body.id) });
    expect(asText).toEqual({
      status: 201,
      body: {
        id: expect.any(Number),
        filename: 'a.png',
        file_url: 'http://example.com/a.png',
        file_size: 2048,
        uploaded_at: expect.stringMatching(iso),
        uploader_id: alice.id,
        public_message_id: message.body.id,
        private_chat_id: null,
      },
    });
    expect(await api('/files/', { token: alice.token })).toEqual({ status: 200, body: [asText.body] });

    const socket = await socketFor(alice);
    const cases: Array<[string, Record<string, unknown>]> = [
      ['join_private', { other_user_id: [bob.id] }],
      ['join_private', { other_user_id: true }],
      ['leave_private', { other_user_id: { id: bob.id } }],
      ['send_private_message', { other_user_id: [bob.id], content: 'array id' }],
      ['send_private_message', { other_user_id: `${bob.id}.0`, content: 'float id' }],
    ];
    for (const [event, data] of cases) {
      const failed = nextIo(socket, 'error');
      socket.emit(event, data);
      expect(await failed).toEqual({ message: 'other_user_id: must be an integer' });
    }
    expect((await api(`/messages/private/${bob.id}`, { token: alice.token })).body).toEqual({ messages: [chat.body] });
    const joined = nextIo(socket, 'joined_private');
    socket.emit('join_private', { other_user_id: String(bob.id) });
    expect(await joined).toEqual({ chat_id: chat.body.chat_id, room: `private_chat_${chat.body.chat_id}`, other_user_id: bob.id });
  });
});

describe('flask-chat files', () => {
  it('records files of public messages and private chats, lists, shows and deletes them', async () => {
    const [alice, bob, carol] = await Promise.all([account(), account(), account()]);
    const message = await api('/messages', { method: 'POST', token: alice.token, body: { content: 'see attached' } });
    const chat = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'for you' } });
    const chatId = chat.body.chat_id;

    const doc = await api('/files/', {
      method: 'POST',
      token: alice.token,
      body: { filename: 'document.pdf', file_url: 'http://example.com/document.pdf', file_size: 102400, public_message_id: message.body.id },
    });
    expect(doc).toEqual({
      status: 201,
      body: {
        id: expect.any(Number),
        filename: 'document.pdf',
        file_url: 'http://example.com/document.pdf',
        file_size: 102400,
        uploaded_at: expect.stringMatching(iso),
        uploader_id: alice.id,
        public_message_id: message.body.id,
        private_chat_id: null,
      },
    });
    const photo = await api('/files/', {
      method: 'POST',
      token: alice.token,
      body: { filename: 'photo.JPEG', file_url: 'https://example.com/photo.jpeg', file_size: 5 * 1024 * 1024, private_chat_id: chatId },
    });
    expect(photo.status).toBe(201);
    expect(photo.body).toEqual({
      id: expect.any(Number),
      filename: 'photo.JPEG',
      file_url: 'https://example.com/photo.jpeg',
      file_size: 5242880,
      uploaded_at: expect.stringMatching(iso),
      uploader_id: alice.id,
      public_message_id: null,
      private_chat_id: chatId,
    });

    expect(await api('/files/', { token: alice.token })).toEqual({ status: 200, body: [doc.body, photo.body] });
    expect(await api('/files', { token: bob.token })).toEqual({ status: 200, body: [] });
    expect(await api(`/files/${doc.body.id}`, { token: alice.token })).toEqual({ status: 200, body: { file: doc.body } });
    // By id, a file is its uploader's (and an admin's) alone, even for the other user of its chat.
    expect(await api(`/files/${photo.body.id}`, { token: bob.token })).toEqual({ status: 403, body: { message: 'Access denied' } });
    expect(await api(`/files/${photo.body.id}`, { token: carol.token })).toEqual({ status: 403, body: { message: 'Access denied' } });
    const adminToken = await login(admin.username, admin.password);
    expect(await api(`/files/${photo.body.id}`, { token: adminToken })).toEqual({ status: 200, body: { file: photo.body } });
    expect(await api('/files/99999999', { token: alice.token })).toEqual({ status: 404, body: { message: 'File not found' } });
    expect(await api(`/files/public/${message.body.id}`, { token: carol.token })).toEqual({ status: 200, body: { files: [doc.body] } });
    expect(await api(`/files/private/${chatId}`, { token: bob.token })).toEqual({ status: 200, body: { files: [photo.body] } });
    expect((await api(`/files/private/${chatId}`, { token: carol.token })).status).toBe(403);

    expect(await api(`/files/${doc.body.id}`, { method: 'DELETE', token: bob.token })).toEqual({ status: 403, body: { message: 'Access denied' } });
    expect(await api(`/files/${doc.body.id}`, { method: 'DELETE', token: alice.token })).toEqual({ status: 200, body: { message: 'File deleted' } });
    expect(await api(`/files/${doc.body.id}`, { token: alice.token })).toEqual({ status: 404, body: { message: 'File not found' } });
    expect((await api(`/files/public/${message.body.id}`, { token: alice.token })).body).toEqual({ files: [] });
  });

  it('refuses files over 5 MB, of other types, and without exactly one association', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const message = await api('/messages', { method: 'POST', token: alice.token, body: { content: 'files here' } });
    const chat = await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'and here' } });
    const file = { filename: 'a.png', file_url: 'http://example.com/a.png', file_size: 10 };
    const post = (body: Record<string, unknown>) => api('/files/', { method: 'POST', token: alice.token, body });

    expect(await post({ ...file, file_size: 5 * 1024 * 1024 + 1, public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_size: must be at most 5242880 bytes (5 MB)' },
    });
    expect(await post({ ...file, file_size: 3_000_000_000, public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_size: must be at most 5242880 bytes (5 MB)' },
    });
    expect(await post({ ...file, file_size: -1, public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_size: must not be negative' },
    });
    expect(await post({ ...file, filename: 'run.exe', public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'filename: must be one of: pdf, doc, docx, jpg, jpeg, png, gif, bmp, tif, tiff, webp' },
    });
    expect(await post({ ...file, file_url: 'not a url', public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_url: must be a URL' },
    });
    const exactlyOne = { status: 400, body: { message: 'public_message_id: give exactly one of public_message_id and private_chat_id' } };
    expect(await post(file)).toEqual(exactlyOne);
    expect(await post({ ...file, public_message_id: message.body.id, private_chat_id: chat.body.chat_id })).toEqual(exactlyOne);
    expect(await post({ ...file, file_size: 'big', public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_size: must be an integer' },
    });
    expect(await post({ filename: 'a.png', file_size: 1, public_message_id: message.body.id })).toEqual({
      status: 400,
      body: { message: 'file_url: is required' },
    });

    // A public message must be one of the public chat, a private chat one of the caller's.
    expect(await post({ ...file, public_message_id: chat.body.id })).toEqual({ status: 404, body: { message: 'Message not found' } });
    const { publicRoom } = await graphql(alice.token, 'query { publicRoom { id } }');
    expect(await post({ ...file, private_chat_id: Number(publicRoom.id) })).toEqual({ status: 404, body: { message: 'Chat not found' } });
    expect(await api(`/files/private/${publicRoom.id}`, { token: alice.token })).toEqual({ status: 404, body: { message: 'Chat not found' } });
    expect(await api(`/files/public/${chat.body.id}`, { token: alice.token })).toEqual({ status: 404, body: { message: 'Message not found' } });
    expect(await api('/files/', { token: alice.token })).toEqual({ status: 200, body: [] });
  });
});

describe('flask-chat users', () => {
  it('lists and shows users to signed-in callers, with others’ emails private', async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    const me = await api(`/users/${alice.id}`, { token: alice.token });
    expect(me).toEqual({
      status: 200,
      body: { user: { id: alice.id, username: alice.username, email: alice.email, avatar_url: null, created_at: expect.stringMatching(iso) } },
    });
    const other = await api(`/users/${alice.id}`, { token: bob.token });
    expect(other.body).toEqual({ user: { ...me.body.user, email: null } });

    const list = await api('/users/', { token: bob.token });
    expect(list.status).toBe(200);
    expect(Object.keys(list.body)).toEqual(['users']);
    for (const user of list.body.users) {
      expect(user).toEqual({
        id: expect.any(Number),
        username: expect.any(String),
        email: user.id === bob.id ? bob.email : null,
        avatar_url: user.avatar_url === null ? null : expect.stringMatching(/^https?:\/\//),
        created_at: expect.stringMatching(iso),
      });
    }
    // The list is the first users by id, at most 100 unless ?limit= says otherwise; anyone
    // past them is found by name.
    expect(list.body.users.length).toBeLessThanOrEqual(100);
    expect(await api(`/users?search=${alice.username}`, { token: bob.token })).toEqual({ status: 200, body: { users: [other.body.user] } });
    expect(await api(`/users?search=${bob.username.toUpperCase()}`, { token: bob.token })).toEqual({
      status: 200,
      body: { users: [{ id: bob.id, username: bob.username, email: bob.email, avatar_url: null, created_at: expect.stringMatching(iso) }] },
    });
    expect(await api(`/users?search=${uniqueName('nobody')}`, { token: bob.token })).toEqual({ status: 200, body: { users: [] } });
    expect((await api('/users?limit=2', { token: bob.token })).body.users).toEqual(list.body.users.slice(0, 2));
    expect(await api('/users/99999999', { token: bob.token })).toEqual({ status: 404, body: { message: 'User not found' } });
  });

  it('updates and deletes only your own account, unless you are an admin', async () => {
    const [alice, bob, carol] = await Promise.all([account(), account(), account()]);
    const renamed = uniqueName('renamed');
    const updated = await api(`/users/${alice.id}`, {
      method: 'PUT',
      token: alice.token,
      body: { username: renamed, avatar_url: 'https://example.com/me.png' },
    });
    expect(updated).toEqual({
      status: 200,
      body: { message: 'User updated successfully', user: { id: alice.id, username: renamed, email: alice.email } },
    });
    expect((await api(`/users/${alice.id}`, { token: bob.token })).body.user).toEqual({
      id: alice.id,
      username: renamed,
      email: null,
      avatar_url: 'https://example.com/me.png',
      created_at: expect.stringMatching(iso),
    });
    expect(await api(`/users/${alice.id}`, { method: 'PUT', token: alice.token, body: { avatar_url: 'nope' } })).toEqual({
      status: 400,
      body: { message: 'avatar_url: must be a URL' },
    });
    expect(await api(`/users/${alice.id}`, { method: 'PUT', token: alice.token, body: { email: bob.email } })).toEqual({
      status: 400,
      body: { message: 'This email is already taken' },
    });
    expect(await api(`/users/${bob.id}`, { method: 'PUT', token: alice.token, body: { username: uniqueName('x') } })).toEqual({
      status: 403,
      body: { message: 'You can only change your own account' },
    });
    expect(await api('/users/99999999', { method: 'PUT', token: alice.token, body: {} })).toEqual({ status: 404, body: { message: 'User not found' } });
    expect(await api(`/users/${bob.id}`, { method: 'DELETE', token: alice.token })).toEqual({
      status: 403,
      body: { message: 'You can only change your own account' },
    });

    const adminToken = await login(admin.username, admin.password);
    const byAdmin = await api(`/users/${bob.id}`, { method: 'PUT', token: adminToken, body: { email: `new.${bob.email}` } });
    expect(byAdmin).toEqual({
      status: 200,
      body: { message: 'User updated successfully', user: { id: bob.id, username: bob.username, email: `new.${bob.email}` } },
    });
    expect(await api(`/users/${bob.id}`, { method: 'DELETE', token: adminToken })).toEqual({ status: 200, body: { message: 'User deleted successfully' } });
    expect(await api(`/users/${bob.id}`, { token: carol.token })).toEqual({ status: 404, body: { message: 'User not found' } });
    expect(await api('/users/99999999', { method: 'DELETE', token: adminToken })).toEqual({ status: 404, body: { message: 'User not found' } });

    expect(await api(`/users/${carol.id}`, { method: 'DELETE', token: carol.token })).toEqual({ status: 200, body: { message: 'User deleted successfully' } });
    expect(await api('/auth/login', { method: 'POST', body: { username: carol.username, password: carol.password } })).toEqual({
      status: 401,
      body: { message: 'Invalid credentials' },
    });
  });
});

describe('flask-chat Socket.IO', () => {
  it("runs the seed's client: connected, public chat, online users, private chat", async () => {
    const [alice, bob] = await Promise.all([account(), account()]);
    process.env.SEED_TOKEN = alice.token;
    const { socket } = await import('./seed-clients/flask-chat.js');
    sockets.push(socket);
    expect(await nextIo(socket, 'connected')).toEqual({ message: 'Connected to chat server', user: { id: alice.id, username: alice.username } });

    const joined = nextIo(socket, 'user_joined');
    socket.emit('join_public');
    expect(await joined).toEqual({ user: { id: alice.id, username: alice.username }, message: `${alice.username} joined the public chat` });

    const tag = uniqueName('seed');
    const published = nextIo(socket, 'new_public_message', (m) => m.content === `${tag} Hello everyone!`);
    socket.emit('send_public_message', { content: `${tag} Hello everyone!` });
    const message = await published;
    expect(message).toEqual({
      id: expect.any(Number),
      content: `${tag} Hello everyone!`,
      timestamp: expect.stringMatching(iso),
      user: { id: alice.id, username: alice.username },
      username: alice.username,
    });
    const stored = await api('/messages', { token: bob.token });
    expect(stored.body.messages).toContainEqual({ ...publicMessage(message.content, alice), id: message.id, timestamp: message.timestamp });

    const online = nextIo(socket, 'online_users');
    socket.emit('get_online_users');
    const onlineUsers = await online;
    expect(Array.isArray(onlineUsers)).toBe(true);
    expect(onlineUsers).toContainEqual({ id: alice.id, username: alice.username });

    const bobSocket = await socketFor(bob, 'query');
    const chatJoined = nextIo(socket, 'joined_private');
    socket.emit('join_private', { other_user_id: bob.id });
    const chat = await chatJoined;
    expect(chat).toEqual({ chat_id: expect.any(Number), room: `private_chat_${chat.chat_id}`, other_user_id: bob.id });

    const toAlice = nextIo(socket, 'new_private_message');
    const toBob = nextIo(bobSocket, 'new_private_message');
    socket.emit('send_private_message', { other_user_id: bob.id, content: 'Private message' });
    const expected = {
      id: expect.any(Number),
      content: 'Private message',
      timestamp: expect.stringMatching(iso),
      sender: { id: alice.id, username: alice.username },
      username: alice.username,
    };
    expect(await toAlice).toEqual(expected);
    expect(await toBob).toEqual(await toAlice);
    const history = await api(`/messages/private/${alice.id}`, { token: bob.token });
    expect(history).toEqual({
      status: 200,
      body: {
        messages: [
          {
            id: (await toBob).id,
            content: 'Private message',
            timestamp: (await toBob).timestamp,
            sender_id: alice.id,
            chat_id: chat.chat_id,
            username: alice.username,
            avatar_url: null,
          },
        ],
      },
    });
    // leave_private has no documented answer: it succeeds (the acknowledgement says so) without an error.
    const errors = recordIo(socket, 'error');
    expect(await socket.emitWithAck('leave_private', { other_user_id: bob.id })).toEqual({ success: true });
    expect(errors).toEqual([]);
  });

  it('refuses a missing or invalid token at once', async () => {
    await expect(connectIo(`${server.url}/flask-chat`, { auth: { token: 'nope' } })).rejects.toHaveProperty('data', { message: 'Access token invalid' });
    await expect(connectIo(`${server.url}/flask-chat`, { query: { token: 'nope' } })).rejects.toHaveProperty('data', { message: 'Access token invalid' });
    await expect(connectIo(`${server.url}/flask-chat`)).rejects.toHaveProperty('data', { message: 'Authentication required' });
  });

  it('announces joins and leaves to the public chat, and sends its messages only to those in it', async () => {
    const [alice, bob, carol] = await Promise.all([account(), account(), account()]);
    const bobSocket = await inPublicChat(bob);
    const aliceJoined = nextIo(bobSocket, 'user_joined', (e) => e.user.id === alice.id);
    const aliceSocket = await inPublicChat(alice);
    expect(await aliceJoined).toEqual({ user: { id: alice.id, username: alice.username }, message: `${alice.username} joined the public chat` });
    const carolSocket = await socketFor(carol);
    const carolPublic = recordIo(carolSocket, 'new_public_message');

    // A message of the REST surface reaches the sockets in the public chat.
    const viaRest = nextIo(bobSocket, 'new_public_message', (m) => m.content === 'over REST');
    const posted = await api('/messages', { method: 'POST', token: alice.token, body: { content: 'over REST' } });
    expect(await viaRest).toEqual({
      id: posted.body.id,
      content: 'over REST',
      timestamp: posted.body.timestamp,
      user: { id: alice.id, username: alice.username },
      username: alice.username,
    });
    // Carol, connected but not in the public chat, hears her private message and nothing before it.
    const barrier = nextIo(carolSocket, 'new_private_message');
    await api(`/messages/private/${carol.id}`, { method: 'POST', token: alice.token, body: { content: 'barrier' } });
    await barrier;
    expect(carolPublic).toEqual([]);

    // A second socket of the same user counts once among the online users.
    await inPublicChat(alice);
    const online = nextIo(bobSocket, 'online_users');
    bobSocket.emit('get_online_users');
    const users = await online;
    expect(Array.isArray(users)).toBe(true);
    expect(users.filter((u: any) => u.id === alice.id)).toEqual([{ id: alice.id, username: alice.username }]);
    expect(users).toContainEqual({ id: bob.id, username: bob.username });
    expect(users).not.toContainEqual(expect.objectContaining({ id: carol.id }));

    const left = { user: { id: bob.id, username: bob.username }, message: `${bob.username} left the public chat` };
    const bobLeft = nextIo(bobSocket, 'user_left');
    const othersHear = nextIo(aliceSocket, 'user_left');
    const bobPublic = recordIo(bobSocket, 'new_public_message');
    bobSocket.emit('leave_public');
    expect(await bobLeft).toEqual(left);
    expect(await othersHear).toEqual(left);
    const afterLeave = nextIo(aliceSocket, 'new_public_message', (m) => m.content === 'after bob left');
    aliceSocket.emit('send_public_message', { content: 'after bob left' });
    await afterLeave;
    const bobBarrier = nextIo(bobSocket, 'new_private_message');
    await api(`/messages/private/${bob.id}`, { method: 'POST', token: alice.token, body: { content: 'bob barrier' } });
    await bobBarrier;
    expect(bobPublic).toEqual([]);
  });

  it('sends private messages to every socket of both users, and not messages of groups', async () => {
    const [alice, bob, carol] = await Promise.all([account(), account(), account()]);
    const [aliceSocket, bobSocket] = await Promise.all([socketFor(alice), socketFor(bob)]);
    const bobMessages = recordIo(bobSocket, 'new_private_message');
    const { createConversation } = await graphql(
      alice.token,
      'mutation($ids: [ID!]) { createConversation(input: { kind: GROUP, title: "team", participantIds: $ids }) { id } }',
      { ids: [String(bob.id), String(carol.id)] },
    );
    await graphql(alice.token, 'mutation($id: ID!) { sendMessage(input: { conversationId: $id, content: "group talk" }) { id } }', {
      id: createConversation.id,
    });

    const toAlice = nextIo(aliceSocket, 'new_private_message');
    const toBob = nextIo(bobSocket, 'new_private_message');
    const sent = await api(`/messages/private/${alice.id}`, { method: 'POST', token: bob.token, body: { content: 'direct' } });
    const expected = {
      id: sent.body.id,
      content: 'direct',
      timestamp: sent.body.timestamp,
      sender: { id: bob.id, username: bob.username },
      username: bob.username,
    };
    expect(await toAlice).toEqual(expected);
    expect(await toBob).toEqual(expected);
    expect(bobMessages).toEqual([expected]);
  });

  it('emits error with the message body for failed events', async () => {
    const alice = await account();
    const socket = await socketFor(alice);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['send_private_message', { other_user_id: alice.id, content: 'me' }, 'Cannot send message to yourself'],
      ['send_private_message', { other_user_id: 99999999, content: 'hi' }, 'User not found'],
      ['join_private', { other_user_id: 'abc' }, 'other_user_id: must be an integer'],
      ['join_private', {}, 'other_user_id: is required'],
      ['send_public_message', {}, 'content: is required'],
      ['send_public_message', { content: '  ' }, 'content: must not be empty'],
    ];
    for (const [event, data, message] of cases) {
      const failed = nextIo(socket, 'error');
      socket.emit(event, data);
      expect(await failed).toEqual({ message });
    }
  });

  it('disconnects a socket whose session ends', async () => {
    const alice = await account();
    const socket = await socketFor(alice);
    const gone = nextIo(socket, 'disconnect');
    await api('/auth/logout', { method: 'POST', token: alice.token });
    expect(await gone).toBe('io server disconnect');
    await expect(connected(socket.connect())).rejects.toHaveProperty('data', { message: 'Session ended; sign in again' });
  });
});
