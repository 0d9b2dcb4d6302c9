import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type GqlError, type GqlResult, type SignedUp } from './helpers/clients.ts';
import { directBetween, History, listening, loseNextMessageEvent, send, SendMessage, UserEvents, watchConversation } from './helpers/chat.ts';
import { startServer, usingServices, type TestServer } from './helpers/server.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

type Added = { __typename: string; message?: { id: string; content: string } };
const added = (r: { data?: { conversationEvents: unknown } | null }) => r.data!.conversationEvents as Added;

const watch = watchConversation;

describe('live delivery heals itself', () => {
  let server: TestServer;
  let alice: SignedUp;
  let bob: SignedUp;
  beforeAll(async () => {
    // A subscriber may leave 20 events unread here, so that one that stops reading is dropped soon.
    server = await startServer({ SUBSCRIPTION_MAX_QUEUED: '20' });
    [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
  });
  afterAll(() => server?.stop());

  it('delivers a message whose event was lost although nothing is sent after it', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, first } = await watch(server, bob, id);
    const repair = loseNextMessageEvent(server, id);
    try {
      const lost = await send(server, alice, id, 'the last word, lost on the bus');
      // No later message shows the hole: the conversation's quiet check finds it.
      expect(added((await first).value!)).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: lost.id } });
    } finally {
      repair();
    }
    await ws.client.dispose();
  });

  it('announces a send retried after a failure between its commit and its announcement, once', async () => {
    const id = await directBetween(server, alice, bob);
    const conversation = await watch(server, bob, id);
    const ws = connectWs(server, bob.accessToken);
    const live = listening(server, `user:${bob.id}`);
    const mine = subscribe(ws, UserEvents);
    const firstOfMine = nextEvent(mine, 'the retried message on userEvents', 20_000);
    await live;

    // The publish fails once, after the message is committed, as when Redis drops the connection.
    const bus = server.app.services.bus;
    const publish = bus.publish.bind(bus);
    bus.publish = async (topic, event) => {
      bus.publish = publish;
      if (event.type === 'messageAdded') throw new Error('Connection is closed.');
      return publish(topic, event);
    };
    const input = { conversationId: id, content: 'stored, then the bus failed', clientId: 'retry-me' };
    const failed = await gql(server, SendMessage, { input }, alice.accessToken);
    bus.publish = publish;
    expect(code(failed)).toBe('UNAVAILABLE');

    // The client retries with the same clientId: the stored message, announced now.
    const retried = await gql(server, SendMessage, { input }, alice.accessToken);
    const message = retried.data!.sendMessage;
    expect(added((await conversation.first).value!).message!.id).toBe(message.id);
    expect((await firstOfMine).data!.userEvents).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: message.id } });
    expect((await nextEvent(mine, 'the conversation update')).data!.userEvents.__typename).toBe('ConversationUpdatedEvent');

    // Retried once more: the same message again, and no subscriber gets it twice.
    expect((await gql(server, SendMessage, { input }, alice.accessToken)).data!.sendMessage.id).toBe(message.id);
    const next = await send(server, alice, id, 'the next one');
    expect(added(await nextEvent(conversation.events, 'the next message')).message!.id).toBe(next.id);
    expect((await nextEvent(mine, 'the next message')).data!.userEvents).toMatchObject({ message: { id: next.id } });

    const history = await gql(server, History, { conversationId: id, first: 10 }, alice.accessToken);
    expect(history.data!.messages.edges.filter((e) => e.node.content === input.content)).toHaveLength(1);
    await Promise.all([conversation.ws.client.dispose(), ws.client.dispose()]);
  });

  it('ends a subscription that stopped reading with UNAVAILABLE (TOO_FAR_BEHIND) and lets it go', async () => {
    const id = await directBetween(server, alice, bob);
    const before = server.app.services.bus.stats().subscriptions;
    const { ws, events, first } = await watch(server, bob, id);
    const socket = await ws.socket;
    socket.pause();
    // Sends until the subscriber's unread events pass the bound: first the sockets' buffers
    // fill up, then its queue. Bounded, so a subscription never dropped fails the test.
    const filler = 'x'.repeat(8000);
    const sent: string[] = [];
    for (let round = 0; round < 150 && server.app.services.bus.stats().subscriptions > before; round++) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => send(server, alice, id, `${round * 20 + i} ${filler}`)));
      sent.push(...batch.map((m) => m.id));
    }
    expect(server.app.services.bus.stats().subscriptions).toBe(before);
    socket.resume();

    // What it had been sent comes in order, then the error that tells it to catch up by id.
    const received: string[] = [];
    let failure: GqlError | undefined;
    try {
      received.push(added((await first).value!).message!.id);
      for (;;) received.push(added(await nextEvent(events, 'the next message or the end')).message!.id);
    } catch (err) {
      if (!Array.isArray(err)) throw err;
      failure = (err as GqlError[])[0];
    }
    expect(failure?.extensions).toMatchObject({ code: 'UNAVAILABLE', reason: 'TOO_FAR_BEHIND' });
    expect(failure?.extensions).not.toHaveProperty('http');
    expect(received.length).toBeLessThan(sent.length);
    expect(received).toEqual(sent.slice(0, received.length));
    await ws.client.dispose();
  });
});

describe.runIf(usingServices)('while PostgreSQL is away', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let alice: SignedUp;
  let bob: SignedUp;
  beforeAll(async () => {
    const database = new URL(process.env.DATABASE_URL!);
    proxy = await startTcpProxy({ host: database.hostname, port: Number(database.port || 5432) });
    database.hostname = '127.0.0.1';
    database.port = String(proxy.port);
    server = await startServer({ DATABASE_URL: database.href });
    [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
  });
  afterAll(async () => {
    proxy?.restore();
    await server?.stop();
    await proxy?.close();
  });

  it('answers UNAVAILABLE (503 with Retry-After) on every surface, and a retry with the same clientId stores one message', async () => {
    const id = await directBetween(server, alice, bob);
    const ws = connectWs(server, alice.accessToken);
    await ws.connected;
    const input = { conversationId: id, content: 'sent during the outage', clientId: 'outage-1' };
    proxy.cut();
    try {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${alice.accessToken}` },
        body: JSON.stringify({ query: print(SendMessage), variables: { input } }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      const body = (await res.json()) as { errors: GqlError[] };
      expect(body.errors[0].extensions).toEqual({ code: 'UNAVAILABLE', reason: 'TRANSIENT', retryAfter: 1 });

      const overSocket = await new Promise<GqlResult<unknown>>((resolve, reject) => {
        ws.client.subscribe({ query: print(SendMessage), variables: { input } }, { next: (r) => resolve(r as GqlResult<unknown>), error: reject, complete: () => {} });
      });
      expect(overSocket.errors![0].extensions).toEqual({ code: 'UNAVAILABLE', reason: 'TRANSIENT', retryAfter: 1 });

      const rest = await fetch(`${server.url}/socket-chat/api/conversations/${id}/messages`, { headers: { authorization: `Bearer ${alice.accessToken}` } });
      expect(rest.status).toBe(503);
      expect(rest.headers.get('retry-after')).toBe('1');
    } finally {
      proxy.restore();
    }
    const retried = await gql(server, SendMessage, { input }, alice.accessToken);
    expect(retried.data!.sendMessage.content).toBe(input.content);
    const history = await gql(server, History, { conversationId: id, first: 10 }, bob.accessToken);
    expect(history.data!.messages.edges.map((e) => e.node.content)).toEqual([input.content]);
    await ws.client.dispose();
  });
});
