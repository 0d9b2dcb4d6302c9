import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWs, gql, nextEvent, signUp, subscribe } from './helpers/clients.ts';
import { directBetween, send, SetTyping, watchConversation } from './helpers/chat.ts';
import { BanUser, Login, Presence } from './helpers/operations.ts';
import { spawnServer } from './helpers/process.ts';
import { connectIo, nextIo } from './helpers/sockets.ts';
import { freshDatabase, startServer, uniqueName, usingServices, type TestServer } from './helpers/server.ts';

// Several instances can only share state through real PostgreSQL and Redis, so this file runs
// when DATABASE_URL and REDIS_URL are set (as .ci/run does); the embedded run has one instance.
describe.runIf(usingServices)('two instances on one PostgreSQL and Redis', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let databaseUrl: string;
  let a: TestServer;
  let b: TestServer;
  const admin = { username: uniqueName('admin'), password: 'admin password 1' };

  beforeAll(async () => {
    database = await freshDatabase();
    databaseUrl = database.url;
    const env = { DATABASE_URL: databaseUrl, PRESENCE_TTL: '3', ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
  });

  it('applied each migration once although both started together', async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query('SELECT migration_name, count(*)::int AS n FROM _prisma_migrations GROUP BY 1');
    await client.end();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });

  it('shows a user who connects to one instance as online to a subscriber on the other', async () => {
    const watcher = await signUp(a);
    const watched = await signUp(b);
    const ws = connectWs(a, watcher.accessToken);
    const events = subscribe(ws, Presence, { userIds: [watched.id] });
    expect((await nextEvent(events, 'initial state')).data!.presence.isOnline).toBe(false);

    const onB = connectWs(b, watched.accessToken);
    expect((await nextEvent(events, 'online from the other instance')).data!.presence.isOnline).toBe(true);
    await onB.client.dispose();
    const offline = await nextEvent(events, 'offline from the other instance');
    expect(offline.data!.presence).toMatchObject({ isOnline: false, user: { id: watched.id } });
    expect(offline.data!.presence.lastSeenAt).not.toBeNull();
    await ws.client.dispose();
  });

  it('does not leave users online when an instance dies without closing its sockets', async () => {
    const watcher = await signUp(a);
    const watched = await signUp(a);
    const ws = connectWs(a, watcher.accessToken);
    const events = subscribe(ws, Presence, { userIds: [watched.id] });
    await nextEvent(events, 'initial state');

    const doomed = await spawnServer({ DATABASE_URL: databaseUrl, REDIS_URL: process.env.REDIS_URL!, PRESENCE_TTL: '3' });
    const onDoomed = connectWs(doomed, watched.accessToken);
    expect((await nextEvent(events, 'online')).data!.presence.isOnline).toBe(true);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const offline = await nextEvent(events, 'offline after the heartbeat lapsed', 15_000);
    expect(offline.data!.presence.isOnline).toBe(false);
    await onDoomed.client.dispose();
    await ws.client.dispose();
  });

  it('delivers a message sent on one instance to a subscriber on the other, in order', async () => {
    const [sender, reader] = await Promise.all([signUp(a), signUp(b)]);
    const id = await directBetween(a, sender, reader);
    const { ws, events, first } = await watchConversation(b, reader, id);
    const sent = await Promise.all(['one', 'two', 'three', 'four', 'five'].map((text) => send(a, sender, id, text)));
    const received = [(await first).value!];
    for (let i = 1; i < sent.length; i++) received.push(await nextEvent(events, `message ${i + 1}`));
    const seqs = received.map((r) => (r.data!.conversationEvents as { message: { seq: number } }).message.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    await gql(a, SetTyping, { conversationId: id, isTyping: true }, sender.accessToken);
    expect((await nextEvent(events, 'typing from the other instance')).data!.conversationEvents).toMatchObject({ __typename: 'TypingEvent', isTyping: true });
    await ws.client.dispose();
  });

  it('keeps showing a user typing who refreshed on the other instance, and stops them once, 6 s after the last refresh', async () => {
    const [typist, reader] = await Promise.all([signUp(a), signUp(b)]);
    const id = await directBetween(a, typist, reader);
    const { ws, events, first } = await watchConversation(b, reader, id);
    const typing = (r: { data?: { conversationEvents: unknown } | null }) => r.data!.conversationEvents as { __typename: string; isTyping?: boolean };
    await gql(a, SetTyping, { conversationId: id, isTyping: true }, typist.accessToken);
    expect(typing((await first).value!)).toMatchObject({ __typename: 'TypingEvent', isTyping: true });
    // Half-way through instance a's 6 s, the client's refresh goes to instance b.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await gql(b, SetTyping, { conversationId: id, isTyping: true }, typist.accessToken);
    const refreshedAt = Date.now();
    expect(typing(await nextEvent(events, 'the refresh'))).toMatchObject({ isTyping: true });
    // Instance a's timer runs out first and must stay silent: the stop is instance b's.
    expect(typing(await nextEvent(events, 'the stop', 12_000))).toMatchObject({ __typename: 'TypingEvent', isTyping: false });
    expect(Date.now() - refreshedAt).toBeGreaterThan(5500);
    const after = await send(a, typist, id, 'done typing');
    expect(typing(await nextEvent(events, 'the message after the stop'))).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: after.id } });
    await ws.client.dispose();
  });

  it('closes a banned user’s socket on the other instance', async () => {
    const user = await signUp(b);
    const onB = connectWs(b, user.accessToken);
    await onB.connected;
    const adminLogin = await gql(a, Login, { input: { identifier: admin.username, password: admin.password } });
    await gql(a, BanUser, { id: user.id }, adminLogin.data!.login.accessToken);
    expect((await onB.closed).code).toBe(4403);
  });

  it('shares Socket.IO rooms: flask-chat joins, online users and public messages span instances', async () => {
    const [onA, onB] = await Promise.all([signUp(a), signUp(b)]);
    const socketA = await connectIo(`${a.url}/flask-chat`, { auth: { token: onA.accessToken } });
    const socketB = await connectIo(`${b.url}/flask-chat`, { auth: { token: onB.accessToken } });
    try {
      const aJoined = nextIo(socketA, 'user_joined', (e) => e.user.id === Number(onA.id));
      socketA.emit('join_public');
      await aJoined;
      // B's join is broadcast by instance b and heard by A's socket on instance a.
      const bSeenOnA = nextIo(socketA, 'user_joined', (e) => e.user.id === Number(onB.id));
      socketB.emit('join_public');
      expect(await bSeenOnA).toMatchObject({ user: { id: Number(onB.id), username: onB.username } });

      const online = nextIo(socketA, 'online_users');
      socketA.emit('get_online_users');
      expect((await online).map((u: { id: number }) => u.id).sort()).toEqual([Number(onA.id), Number(onB.id)].sort());

      const message = nextIo(socketA, 'new_public_message', (m) => m.content === 'from instance b');
      socketB.emit('send_public_message', { content: 'from instance b' });
      expect(await message).toMatchObject({ user: { id: Number(onB.id) }, username: onB.username });
    } finally {
      socketA.close();
      socketB.close();
    }
  });
});
