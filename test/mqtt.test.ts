import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mqttTargets } from '../src/modules/mqtt/consumer.ts';
import type { OutboxEvent } from '../src/modules/outbox/consumer.ts';
import { gql, signUp, type SignedUp } from './helpers/clients.ts';
import { CreateConversation, directBetween, MarkRead, send, SendMessage } from './helpers/chat.ts';
import { databaseOfItsOwn, startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { freePort } from './helpers/ports.ts';
import { PNG, upload } from './helpers/upload.ts';

// The broker every machine here runs (TOOLCHAIN.md); the restart test runs one of its own.
const SHARED_BROKER = 'mqtt://127.0.0.1:1883';

const UploadFile = parse(`mutation ($file: Upload!, $conversationId: ID) { uploadFile(file: $file, conversationId: $conversationId) { id } }`) as TypedDocumentNode<
  { uploadFile: { id: string } },
  { file: unknown; conversationId?: string }
>;

interface Received {
  topic: string;
  payload: Record<string, any>;
  /** The broker sent it again (its subscriber's PUBACK was lost, say): not a publisher's duplicate. */
  dup?: true;
}

/** A frontend's MQTT client, as the seed describes it: subscribed to `chat/{userId}/#` with QoS 1. */
class Subscriber {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly client: MqttClient) {
    // Refused connections while a broker restarts: mqtt.js retries them.
    client.on('error', () => {});
    client.on('message', (topic, payload, packet) => {
      this.received.push({ topic, payload: JSON.parse(payload.toString()), ...(packet.dup ? { dup: true as const } : {}) });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(url: string, userId: string, options: mqtt.IClientOptions = {}): Promise<Subscriber> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, ...options });
    const subscriber = new Subscriber(client);
    await client.subscribeAsync(`chat/${userId}/#`, { qos: 1 });
    return subscriber;
  }

  on(topic: string): Received[] {
    return this.received.filter((r) => r.topic === topic);
  }

  /** What the server published, once each: without the broker's own redeliveries. */
  published(topic: string): Received[] {
    return this.on(topic).filter((r) => !r.dup);
  }

  /** Waits until `done` holds for what has arrived. */
  async until(done: (received: Received[]) => boolean, what: string, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done(this.received)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

const subscribers: Subscriber[] = [];
async function subscribe(url: string, user: SignedUp, options?: mqtt.IClientOptions) {
  const s = await Subscriber.open(url, user.id, options);
  subscribers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(subscribers.splice(0).map((s) => s.close()));
});

describe('MQTT topics of seed 003 (chatrix)', () => {
  let server: TestServer;
  let database: Awaited<ReturnType<typeof databaseOfItsOwn>>;
  let alice: SignedUp;
  let bob: SignedUp;
  let carol: SignedUp;
  let direct: string;

  beforeAll(async () => {
    database = await databaseOfItsOwn();
    server = await startServer({ ...database.env, MQTT_URL: SHARED_BROKER, OUTBOX_RETRY_BASE: '0.05' });
    // User ids of this run's own: another run publishing to the shared broker at the same time
    // (its database counting from 1 too) cannot reach these users' topics.
    await server.app.services.sql.query(`SELECT setval('"User_id_seq"', $1)`, [randomInt(1_000_000, 1_000_000_000)]);
    [alice, bob, carol] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    direct = await directBetween(server, alice, bob);
  });
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it("publishes a new message to the recipient's messages and conversations topics, not to the sender", async () => {
    const [toBob, toAlice] = await Promise.all([subscribe(SHARED_BROKER, bob), subscribe(SHARED_BROKER, alice)]);
    const sent = await send(server, alice, direct, 'Hello!');
    await toBob.until((r) => r.length >= 2, "bob's two messages");
    expect(toBob.on(`chat/${bob.id}/messages`)).toEqual([
      {
        topic: `chat/${bob.id}/messages`,
        payload: {
          conversation_id: direct,
          message: { id: sent.id, sender_id: alice.id, type: 'text', text: 'Hello!', media: null, status: 'sent', created_at: sent.createdAt },
        },
      },
    ]);
    expect(toBob.on(`chat/${bob.id}/conversations`).map((r) => r.payload)).toEqual([
      { conversation_id: direct, last_message_at: sent.createdAt, last_message_preview: 'Hello!', action: 'updated' },
    ]);

    // Bob answers: the first thing on alice's topics is his answer, never her own message.
    const answer = await send(server, bob, direct, 'Hi alice');
    await toAlice.until((r) => r.length >= 2, "alice's messages");
    expect(toAlice.received.map((r) => [r.topic, r.payload.message?.id ?? r.payload.action])).toEqual([
      [`chat/${alice.id}/messages`, answer.id],
      [`chat/${alice.id}/conversations`, 'updated'],
    ]);
    expect(toBob.received).toHaveLength(2);
  });

  it('reaches every other member of a group, with attachments as media; nothing for a PUBLIC conversation', async () => {
    const [toBob, toCarol] = await Promise.all([subscribe(SHARED_BROKER, bob), subscribe(SHARED_BROKER, carol)]);
    const created = await gql(server, CreateConversation, { input: { kind: 'PUBLIC', title: uniqueName('room'), participantIds: [bob.id] } }, alice.accessToken);
    const room = created.data!.createConversation.id;
    await send(server, alice, room, 'to the whole room');

    const group = (await gql(server, CreateConversation, { input: { kind: 'GROUP', title: 'trio', participantIds: [bob.id, carol.id] } }, alice.accessToken))
      .data!.createConversation.id;
    const file = await upload(server, UploadFile, { conversationId: group }, { name: 'dot.png', bytes: PNG, type: 'image/png' }, alice.accessToken);
    const fileId = file.body.data!.uploadFile.id;
    const sent = await gql(server, SendMessage, { input: { conversationId: group, content: '', kind: 'IMAGE', attachmentIds: [fileId] } }, alice.accessToken);
    expect(sent.errors).toBeUndefined();
    const message = sent.data!.sendMessage;

    for (const [subscriber, user] of [[toBob, bob], [toCarol, carol]] as const) {
      await subscriber.until((r) => r.length >= 2, `${user.username}'s group message`);
      // The public room's message came first and went to nobody.
      expect(subscriber.received.map((r) => r.payload.conversation_id)).toEqual([group, group]);
      expect(subscriber.on(`chat/${user.id}/messages`)[0].payload.message).toEqual({
        id: message.id,
        sender_id: alice.id,
        type: 'image',
        text: '',
        media: [{ id: fileId, name: 'dot.png', mime_type: 'image/png', size: PNG.length, width: 1, height: 1 }],
        status: 'sent',
        created_at: message.createdAt,
      });
      expect(subscriber.on(`chat/${user.id}/conversations`)[0].payload.last_message_preview).toBe('[image]');
    }
  });

  it('maps conversation.read to read receipts, the reader\'s message status and both conversation lists', async () => {
    const [toBob, toAlice] = await Promise.all([subscribe(SHARED_BROKER, bob), subscribe(SHARED_BROKER, alice)]);
    const first = await send(server, alice, direct, 'one');
    const second = await send(server, alice, direct, 'two');
    await toBob.until((r) => r.length >= 4, "bob's two messages");
    expect((await gql(server, MarkRead, { conversationId: direct, messageId: first.id }, bob.accessToken)).errors).toBeUndefined();

    await toBob.until((r) => r.length >= 6, "bob's status and list update");
    await toAlice.until((r) => r.length >= 2, "alice's receipt and list update");
    // markConversationRead recorded `conversation.read` with its change; the relay handed it out.
    const readAt = toAlice.received[0].payload.read_at;
    expect(Date.parse(readAt as string)).not.toBeNaN();
    const read = { conversation_id: direct, read_by: bob.id, read_at: readAt };
    expect(toBob.received.slice(4)).toEqual([
      { topic: `chat/${bob.id}/messages-status`, payload: { ...read, action: 'marked_as_read' } },
      // Bob read the first of two: the second is still unread.
      { topic: `chat/${bob.id}/conversations`, payload: { ...read, action: 'messages_read', unread_count: 1 } },
    ]);
    expect(toAlice.received).toEqual([
      { topic: `chat/${alice.id}/read-receipts`, payload: read },
      { topic: `chat/${alice.id}/conversations`, payload: { ...read, action: 'messages_read' } },
    ]);
    expect(second.id).not.toBe(first.id);
  });

  it('reads one batch of events in one query through the connection it is given, skips malformed ones, and leaves out a missing count', async () => {
    const sent = await send(server, alice, direct, 'batched');
    const event = (id: number, type: string, payload: Record<string, unknown>): OutboxEvent => ({ id, type, topic: `conversation:${direct}`, payload, createdAt: new Date() });
    const events = [
      event(-1, 'message.created', { id: Number(sent.id), conversationId: Number(direct), senderId: Number(alice.id), kind: 'TEXT', content: 'batched', createdAt: sent.createdAt }),
      event(-2, 'conversation.read', { conversationId: Number(direct), userId: Number(alice.id), messageId: null, readAt: 'then' }),
      event(-3, 'user.registered', { id: 1 }),
      // Malformed: it goes nowhere, and the others still do.
      event(-4, 'message.created', { id: 'x', conversationId: null }),
    ];
    const client = await server.app.services.sql.connect();
    let queries = 0;
    const counted = new Proxy(client, {
      get(target, key) {
        if (key !== 'query') return Reflect.get(target, key);
        return (...args: unknown[]) => {
          queries++;
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    try {
      const targets = await mqttTargets(events, counted);
      expect(queries).toBe(1);
      expect([...targets.keys()].sort((a, b) => a - b)).toEqual([-2, -1]);
      expect(targets.get(-1)!.map((t) => t.target)).toEqual([`user:${bob.id}`]);
      const read = targets.get(-2)!;
      expect(read.map((t) => t.target)).toEqual([`user:${alice.id}`, `user:${bob.id}`]);
      // No count in the event, no messageId to count unread from: both are left out.
      expect((read[0].payload as any).messages.map((m: Received) => m.payload)).toEqual([
        { conversation_id: direct, action: 'marked_as_read', read_by: alice.id, read_at: 'then' },
        { conversation_id: direct, action: 'messages_read', read_by: alice.id, read_at: 'then' },
      ]);
    } finally {
      client.release();
    }
  });
});

/** A mosquitto of this test's own, on a port that stays the same across restarts. */
class PrivateBroker {
  private child?: ChildProcess;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async create(): Promise<PrivateBroker> {
    const port = await freePort();
    const dir = await mkdtemp(path.join(tmpdir(), 'mosquitto-'));
    // Run as root, mosquitto drops to its own user, which must be able to save its sessions here.
    await chmod(dir, 0o777);
    await writeFile(
      path.join(dir, 'mosquitto.conf'),
      // Persistent sessions survive the restart, as on a production broker.
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}/\n`,
    );
    return new PrivateBroker(port, dir);
  }

  get url() {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('mosquitto', ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (Date.now() > deadline) throw new Error('private mosquitto did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * A TCP proxy in front of a broker that can stop carrying what the server sends (as a network
 * that loses it) and cut every connection.
 */
async function brokerProxy(brokerPort: number) {
  const open = new Set<net.Socket>();
  let stalled = false;
  let held = 0;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(brokerPort, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', end);
      socket.on('error', end);
    }
    client.on('data', (chunk: Buffer) => {
      if (stalled) held += chunk.length;
      else upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    stall() {
      stalled = true;
      held = 0;
    },
    held: () => held,
    /** Connections open through the proxy (each is two sockets). */
    connections: () => open.size / 2,
    cut() {
      stalled = false;
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

describe('MQTT while the broker is down or the connection is lost', () => {
  let broker: PrivateBroker;
  let proxy: Awaited<ReturnType<typeof brokerProxy>>;
  let server: TestServer;
  let database: Awaited<ReturnType<typeof databaseOfItsOwn>>;

  beforeAll(async () => {
    broker = await PrivateBroker.create();
    await broker.start();
    proxy = await brokerProxy(broker.port);
    database = await databaseOfItsOwn();
    // One try before a delivery is dead: a broker that is away must not use tries up, however long it is away.
    server = await startServer({ ...database.env, MQTT_URL: proxy.url, OUTBOX_RETRY_BASE: '0.05', OUTBOX_MAX_ATTEMPTS: '1' });
  });
  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await broker?.remove();
    await database?.drop();
  });

  it('keeps the messages sent meanwhile and publishes every one, in order, once the broker is back', async () => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const direct = await directBetween(server, alice, bob);
    // A frontend with a persistent session (clean: false), so the broker keeps its subscription.
    const toBob = await subscribe(broker.url, bob, { clean: false, clientId: uniqueName('bob') });
    const before = await send(server, alice, direct, 'before');
    await toBob.until((r) => r.length >= 2, 'the message sent before');

    await broker.stop();
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await send(server, alice, direct, `during ${i}`));
    const pending = async () => {
      const { rows } = await server.app.services.sql.query<{ pending: number; failed: number }>(
        `SELECT count(*) FILTER (WHERE status = 'PENDING')::int AS pending, count(*) FILTER (WHERE error IS NOT NULL AND status = 'PENDING')::int AS failed
         FROM "EventDelivery" WHERE consumer = 'mqtt'`,
      );
      return rows[0];
    };
    // The relay holds them, having tried and failed.
    const deadline = Date.now() + 10_000;
    while ((await pending()).failed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await pending()).toMatchObject({ pending: during.length });
    expect((await pending()).failed).toBeGreaterThan(0);

    await broker.start();
    const expected = [before, ...during].map((m) => m.id);
    // Each message, and its conversation update after it. The broker may send bob again what it
    // sent just before it stopped (his PUBACK lost with it): marked dup, and not counted.
    await toBob.until((r) => r.filter((m) => !m.dup).length >= 2 * expected.length && r.at(-1)!.topic.endsWith('/conversations'), 'every message');
    const ids = toBob.published(`chat/${bob.id}/messages`).map((r) => r.payload.message.id as string);
    expect(ids).toEqual(expected);
    const previews = toBob.published(`chat/${bob.id}/conversations`).map((r) => r.payload.last_message_preview);
    expect(previews).toEqual(['before', ...during.map((m) => m.content)]);
    // Each delivery's outcome is stored just after the broker acknowledged it.
    const settled = Date.now() + 5000;
    while ((await pending()).pending > 0 && Date.now() < settled) await new Promise((r) => setTimeout(r, 50));
    expect(await pending()).toMatchObject({ pending: 0 });
    const { rows } = await server.app.services.sql.query(`SELECT count(*)::int AS dead FROM "EventDelivery" WHERE consumer = 'mqtt' AND status = 'DEAD'`);
    expect(rows[0].dead).toBe(0);
  });

  it('leaves a publish lost with its connection to the relay alone to send again, so the subscriber gets it once', async () => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const direct = await directBetween(server, alice, bob);
    const toBob = await subscribe(broker.url, bob);
    const first = await send(server, alice, direct, 'first');
    await toBob.until((r) => r.length >= 2, 'the first message');

    // The publish leaves the server but never reaches the broker; then the connection drops.
    proxy.stall();
    const lost = await send(server, alice, direct, 'lost in transit');
    const deadline = Date.now() + 10_000;
    while (proxy.held() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.held()).toBeGreaterThan(0);
    proxy.cut();
    // Sent after: it goes out only once the lost one was delivered, after any resend mqtt.js made on reconnecting.
    const after = await send(server, alice, direct, 'after');
    await toBob.until((r) => r.some((m) => m.payload.last_message_preview === 'after'), 'the message sent after');
    expect(toBob.published(`chat/${bob.id}/messages`).map((r) => r.payload.message.id)).toEqual([first.id, lost.id, after.id]);
  });

  it('closes its broker connection when the app stops', async () => {
    expect(proxy.connections()).toBe(1);
    await server.stop();
    const deadline = Date.now() + 5000;
    while (proxy.connections() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.connections()).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    // And it does not come back.
    expect(proxy.connections()).toBe(0);
  });
});
