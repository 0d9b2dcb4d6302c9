import { once } from 'node:events';
import type { Socket } from 'node:net';
import jwt from 'jsonwebtoken';
import ioV2 from 'socket.io-client-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { graphql } from './generated/index.ts';
import { connectWs, gql, nextEvent, signUp, subscribe, type SignedUp } from './helpers/clients.ts';
import { directBetween, send } from './helpers/chat.ts';
import { BanUser, Login, Presence } from './helpers/operations.ts';
import { probeActivity, probeDialects } from './helpers/probe-dialect.ts';
import { startServer, TEST_JWT_SECRET, uniqueName, usingServices, type TestServer } from './helpers/server.ts';
import { io } from 'socket.io-client';
import { connected, nextIo } from './helpers/sockets.ts';

const IsOnline = graphql(`
  query ProbeIsOnline($id: ID!) {
    user(id: $id) {
      isOnline
    }
  }
`);

const LogoutProbe = graphql(`
  mutation LogoutProbe {
    logout
  }
`);

/** A client of the probe dialect, whatever carries it. */
interface ProbeClient {
  emit(event: string, data?: unknown): void;
  /** The next `event` whose payload passes `match`. */
  next<T = any>(event: string, match?: (payload: T) => boolean): Promise<T>;
  /** Every `event` payload from now on. */
  record<T = any>(event: string): T[];
  /** Resolves when the server ends the connection: a close code on raw WebSocket, a reason on Socket.IO. */
  closed: Promise<{ code?: number; reason: string }>;
  close(): void;
}

type Transport = 'socket.io' | 'ws';

/** Connects and resolves once the dialect's `welcome` came; rejects with the refusal otherwise. */
async function connectProbe(transport: Transport, server: TestServer, token?: string, room = 'lobby'): Promise<ProbeClient & { welcome: any }> {
  if (transport === 'socket.io') {
    const socket = io(`${server.url}/probe`, { reconnection: false, forceNew: true, transports: ['websocket'], auth: token ? { token } : {} });
    // Listening before connecting: the welcome may come in the same read as the connection.
    const welcome = nextIo(socket, 'welcome');
    await connected(socket);
    const closed = new Promise<{ reason: string }>((resolve) => socket.once('disconnect', (reason) => resolve({ reason })));
    const client: ProbeClient = {
      emit: (event, data = {}) => void socket.emit(event, data),
      next: (event, match) => nextIo(socket, event, match),
      record(event) {
        const seen: any[] = [];
        socket.on(event, (payload: unknown) => seen.push(payload));
        return seen;
      },
      closed,
      close: () => void socket.close(),
    };
    return { ...client, welcome: await welcome };
  }
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/probe/ws/${room}${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  const listeners = new Set<(type: string, data: unknown) => void>();
  ws.on('message', (frame) => {
    const { type, data } = JSON.parse(frame.toString());
    for (const listener of [...listeners]) listener(type, data);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const client: ProbeClient = {
    emit: (event, data = {}) => ws.send(JSON.stringify({ type: event, data })),
    next: (event, match = () => true) =>
      new Promise((resolve) => {
        const listener = (type: string, data: any) => {
          if (type !== event || !match(data)) return;
          listeners.delete(listener);
          resolve(data);
        };
        listeners.add(listener);
      }),
    record(event) {
      const seen: any[] = [];
      listeners.add((type, data) => type === event && seen.push(data));
      return seen;
    },
    closed,
    close: () => ws.close(),
  };
  const welcome = client.next('welcome');
  const refusal = client.next('error');
  const outcome = await Promise.race([welcome.then((w) => ({ welcome: w })), refusal.then((error) => ({ error }))]);
  if ('error' in outcome) throw Object.assign(new Error('refused'), { data: outcome.error, closed: await closed });
  return { ...client, welcome: outcome.welcome };
}

let server: TestServer;
const admin = { username: uniqueName('admin'), password: 'admin password 1' };
const clients: ProbeClient[] = [];

beforeAll(async () => {
  server = await startServer({ ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password }, probeDialects);
});
afterAll(async () => {
  for (const client of clients) client.close();
  await server?.stop();
});

async function adminToken() {
  return (await gql(server, Login, { input: { identifier: admin.username, password: admin.password } })).data!.login.accessToken;
}

describe.each<Transport>(['socket.io', 'ws'])('one dialect session over %s', (transport) => {
  const connect = async (user?: SignedUp, room?: string) => {
    const client = await connectProbe(transport, server, user?.accessToken, room);
    clients.push(client);
    return client;
  };

  it('refuses a client without valid credentials, saying why', async () => {
    const refused = await connectProbe(transport, server, 'not-a-token').then(
      () => null,
      (err) => err,
    );
    expect(refused.data).toEqual({ message: 'Access token invalid' });
    if (transport === 'ws') expect(refused.closed).toEqual({ code: 4401, reason: 'Access token invalid' });
  });

  it('runs documents as its user, follows a subscription, and answers a failed event without closing', async () => {
    const [me, other, stranger] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    const client = await connect(me);
    expect(client.welcome.userId).toBe(Number(me.id));

    client.emit('whoami');
    expect(await client.next('me')).toEqual({ id: me.id, username: me.username });

    const id = await directBetween(server, me, other);
    client.emit('watch', { id });
    await client.next('watching');
    const arrived = client.next('message');
    const sent = await send(server, other, id, 'over any transport');
    expect(await arrived).toEqual({ id: sent.id, content: 'over any transport' });

    // A conversation of others: the dialect's error event, and the connection goes on.
    const theirs = await directBetween(server, other, stranger);
    client.emit('watch', { id: theirs });
    expect(await client.next('error')).toMatchObject({ code: 'FORBIDDEN' });
    client.emit('refuse');
    expect(await client.next('error')).toEqual({ code: 'BAD_USER_INPUT', message: 'text: is required' });
    client.emit('whoami');
    expect(await client.next('me')).toMatchObject({ id: me.id });
  });

  it('counts for presence, and closes when its user signs out on that device or is banned', async () => {
    const [user, watcher] = await Promise.all([signUp(server), signUp(server)]);
    const first = await connect(user);
    expect((await gql(server, IsOnline, { id: user.id }, watcher.accessToken)).data!.user!.isOnline).toBe(true);
    await gql(server, LogoutProbe, undefined, user.accessToken);
    expect(await first.closed).toEqual(transport === 'ws' ? { code: 4401, reason: 'Unauthorized: session ended' } : { reason: 'io server disconnect' });

    const again = await gql(server, Login, { input: { identifier: user.username, password: user.password } });
    const second = await connect({ ...user, accessToken: again.data!.login.accessToken });
    await gql(server, BanUser, { id: user.id }, await adminToken());
    expect(await second.closed).toEqual(transport === 'ws' ? { code: 4403, reason: 'Forbidden: account banned' } : { reason: 'io server disconnect' });
  });

  it('sends a room broadcast to every member, and to nobody outside it', async () => {
    const [a, b, c] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    const [ca, cb, cc] = await Promise.all([connect(a), connect(b), connect(c)]);
    const room = uniqueName('room');
    for (const client of [ca, cb]) {
      client.emit('join', { room });
      await client.next('joined');
    }
    const outside = cc.record('said');
    const [toA, toB] = [ca.next('said'), cb.next('said')];
    ca.emit('say', { room, text: 'hello room' });
    expect(await toA).toEqual({ by: a.username, text: 'hello room' });
    expect(await toB).toEqual({ by: a.username, text: 'hello room' });
    // The next broadcast to a room c is in arrives after the first would have.
    cc.emit('join', { room: `${room}-c` });
    await cc.next('joined');
    const own = cc.next('said');
    cc.emit('say', { room: `${room}-c`, text: 'only c' });
    await own;
    expect(outside).toEqual([{ by: c.username, text: 'only c' }]);
  });
});

describe('raw WebSocket', () => {
  it('closes with 4401 when the access token expires', async () => {
    const user = await signUp(server);
    const { sub, sid } = jwt.decode(user.accessToken) as { sub: string; sid: number };
    const shortLived = jwt.sign({ sub, sid, role: 'USER' }, TEST_JWT_SECRET, { expiresIn: 2 });
    const client = await connectProbe('ws', server, shortLived);
    expect(await client.closed).toEqual({ code: 4401, reason: 'Unauthorized: access token expired' });
  });

  it('hands the path parameters to the dialect', async () => {
    const user = await signUp(server);
    const client = await connectProbe('ws', server, user.accessToken, 'room 42');
    clients.push(client);
    expect(client.welcome.params).toEqual({ room: 'room 42' });
  });

  it('answers an upgrade to no WebSocket endpoint with 404, and one to something else than WebSocket with 400', async () => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/nowhere/ws`);
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!)));
    expect(status).toBe(404);
    ws.once('error', () => {}); // ws reports the refused handshake as an error too
    ws.terminate();
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      import('node:http').then(({ default: http }) => {
        const req = http.request(`${server.url}/graphql`, { headers: { connection: 'Upgrade', upgrade: 'h2c' } });
        req.once('response', (response) => {
          let body = '';
          response.on('data', (chunk) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body }));
        });
        req.once('upgrade', () => reject(new Error('upgraded')));
        req.once('error', reject);
        req.end();
      });
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'Only WebSocket upgrades are served here' });
  });

  it('answers an event it does not know, or a frame it cannot read, with the dialect error', async () => {
    const user = await signUp(server);
    const url = `${server.url.replace(/^http/, 'ws')}/probe/ws/lobby?token=${user.accessToken}`;
    const ws = new WebSocket(url);
    const frames: any[] = [];
    const got = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => frames.length >= n && (ws.off('message', check), resolve());
        ws.on('message', (frame) => {
          frames.push(JSON.parse(frame.toString()));
          check();
        });
      });
    const three = got(3);
    // Sent before the credentials are checked: handled, in order, once they are.
    ws.once('open', () => {
      ws.send('not json');
      ws.send(JSON.stringify({ type: 'launch_rockets' }));
    });
    await three;
    expect(frames.filter((f) => f.type === 'error')).toEqual([
      { type: 'error', data: { code: 'BAD_USER_INPUT', message: 'frame: must be JSON' } },
      { type: 'error', data: { code: 'BAD_USER_INPUT', message: 'Unknown event: launch_rockets' } },
    ]);
    expect(frames).toContainEqual({ type: 'welcome', data: { userId: Number(user.id), params: { room: 'lobby' } } });
    ws.close();
  });

  it('closes with 1013 a client that stops reading while messages pile up', async () => {
    const user = await signUp(server);
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/probe/ws/lobby?token=${user.accessToken}`);
    await new Promise((resolve) => ws.once('message', resolve)); // welcome
    const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // The client stops reading its socket, then asks for 50 MB.
    const tcp = (ws as unknown as { _socket: Socket })._socket;
    tcp.pause();
    const flooded = once(probeActivity, 'flooded');
    ws.send(JSON.stringify({ type: 'flood', data: { count: 200 } }));
    expect(await flooded).toEqual([Number(user.id)]);
    tcp.resume();
    expect(await closed).toEqual({ code: 1013, reason: 'Too slow: messages piled up unread; reconnect and catch up' });
  });
});

describe('raw WebSocket heartbeats', () => {
  let quick: TestServer;
  beforeAll(async () => {
    quick = await startServer({ WS_HEARTBEAT: '0.2' }, probeDialects);
  });
  afterAll(() => quick?.stop());

  it('drops a peer that stops answering pings, and its user goes offline', async () => {
    const [user, watcher] = await Promise.all([signUp(quick), signUp(quick)]);
    const presence = connectWs(quick, watcher.accessToken);
    const events = subscribe(presence, Presence, { userIds: [user.id] });
    const ws = new WebSocket(`${quick.url.replace(/^http/, 'ws')}/probe/ws/lobby?token=${user.accessToken}`, { autoPong: false });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const online = await nextEvent(events, 'online');
    expect(online.data!.presence).toMatchObject({ isOnline: true });
    // It answers no ping, so two heartbeats later it is gone (1006: no close frame).
    expect(await closed).toBe(1006);
    expect((await nextEvent(events, 'offline')).data!.presence).toMatchObject({ user: { id: user.id }, isOnline: false });
    await presence.client.dispose();
  });

  it('keeps a peer that answers', async () => {
    const user = await signUp(quick);
    const client = await connectProbe('ws', quick, user.accessToken);
    // Six heartbeats later it still answers events.
    for (let i = 0; i < 6; i++) {
      client.emit('whoami');
      await client.next('me');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    client.close();
  });
});

describe('Socket.IO v2 clients (protocol 3)', () => {
  it('connect with the token in the query, get server events and acknowledgements', async () => {
    const [user, other] = await Promise.all([signUp(server), signUp(server)]);
    const socket = ioV2(`${server.url}/socket-chat`, { query: { token: user.accessToken }, transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const id = await directBetween(server, user, other);
    const arrived = new Promise<any>((resolve) => socket.once('new_message', resolve));
    await send(server, other, id, 'to an old client');
    expect(await arrived).toMatchObject({ conversation_id: id, message: 'to an old client' });
    const ack = await new Promise((resolve) => socket.emit('mark_as_read', { conversation_id: id }, resolve));
    expect(ack).toEqual({ success: true });
    socket.close();
  });

  it('are refused without a token, with the dialect refusal', async () => {
    const socket = ioV2(`${server.url}/socket-chat`, { transports: ['websocket'], forceNew: true, reconnection: false });
    const refusal = await new Promise((resolve) => socket.once('error', resolve));
    expect(refusal).toEqual({ message: 'User not authenticated' });
    socket.close();
  });
});

describe.runIf(usingServices)('raw WebSocket rooms across instances', () => {
  it('reach members connected to another instance', async () => {
    const other = await startServer({}, probeDialects);
    try {
      const [a, b] = await Promise.all([signUp(server), signUp(server)]);
      const ca = await connectProbe('ws', server, a.accessToken);
      const cb = await connectProbe('ws', other, b.accessToken);
      const room = uniqueName('shared');
      for (const client of [ca, cb]) {
        client.emit('join', { room });
        await client.next('joined');
      }
      const there = cb.next('said');
      ca.emit('say', { room, text: 'across instances' });
      expect(await there).toEqual({ by: a.username, text: 'across instances' });
      ca.close();
      cb.close();
    } finally {
      await other.stop();
    }
  });
});
