import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type SignedUp } from './helpers/clients.ts';
import {
  ConversationEvents,
  CreateConversation,
  DeleteMessage,
  directBetween,
  EditMessage,
  History,
  listening,
  loseNextMessageEvent as loseNextMessageEventOf,
  MarkRead,
  send,
  SetTyping,
  UserEvents,
  watchConversation,
} from './helpers/chat.ts';
import { graphql } from './generated/index.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const RemoveMember = graphql(`
  mutation RemoveFromGroup($conversationId: ID!, $userId: ID!) {
    removeConversationMember(conversationId: $conversationId, userId: $userId) {
      id
    }
  }
`);

let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;

beforeAll(async () => {
  server = await startServer();
  [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
});
afterAll(() => server?.stop());

/** A user watching a conversation, live once this resolves. */
const watch = (user: SignedUp, conversationId: string) => watchConversation(server, user, conversationId);

describe('conversationEvents', () => {
  it('delivers added, edited and deleted messages, read receipts and typing to the other participant', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, events, first } = await watch(bob, id);

    const sent = await send(server, alice, id, 'live hello');
    const added = (await first).value!;
    expect(added.data!.conversationEvents).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: sent.id, content: 'live hello', sender: { id: alice.id } } });

    await gql(server, EditMessage, { id: sent.id, content: 'live hello!' }, alice.accessToken);
    expect((await nextEvent(events, 'edit')).data!.conversationEvents).toEqual({
      __typename: 'MessageEditedEvent',
      message: { id: sent.id, content: 'live hello!', isEdited: true },
    });

    await gql(server, SetTyping, { conversationId: id, isTyping: true }, alice.accessToken);
    expect((await nextEvent(events, 'typing')).data!.conversationEvents).toEqual({
      __typename: 'TypingEvent',
      conversationId: id,
      isTyping: true,
      user: { id: alice.id },
    });
    // Sending ends the sender's typing.
    const second = await send(server, alice, id, 'second');
    const afterSend = [(await nextEvent(events)).data!.conversationEvents, (await nextEvent(events)).data!.conversationEvents];
    expect(afterSend).toContainEqual({ __typename: 'TypingEvent', conversationId: id, isTyping: false, user: { id: alice.id } });
    expect(afterSend.find((e) => e.__typename === 'MessageAddedEvent')).toMatchObject({ message: { id: second.id } });

    await gql(server, MarkRead, { conversationId: id, messageId: second.id }, alice.accessToken);
    const receipt = (await nextEvent(events, 'read receipt')).data!.conversationEvents;
    expect(receipt).toMatchObject({ __typename: 'ReadReceiptEvent', conversationId: id, messageId: second.id, user: { id: alice.id } });

    await gql(server, DeleteMessage, { id: sent.id }, alice.accessToken);
    expect((await nextEvent(events, 'delete')).data!.conversationEvents).toEqual({
      __typename: 'MessageDeletedEvent',
      messageId: sent.id,
      conversationId: id,
    });
    await ws.client.dispose();
  });

  it('does not send typists their own typing, and stops typing by itself after about 6 seconds', async () => {
    const id = await directBetween(server, alice, bob);
    const mine = await watch(alice, id);
    const theirs = await watch(bob, id);
    const started = Date.now();
    await gql(server, SetTyping, { conversationId: id, isTyping: true }, alice.accessToken);
    expect((await theirs.first).value!.data!.conversationEvents).toMatchObject({ isTyping: true });
    const stopped = (await nextEvent(theirs.events, 'typing to stop by itself', 10_000)).data!.conversationEvents;
    expect(stopped).toMatchObject({ __typename: 'TypingEvent', isTyping: false, user: { id: alice.id } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_500);
    // Alice's own stream saw neither: the first thing it gets is the next message.
    const next = await send(server, bob, id, 'after typing');
    expect((await mine.first).value!.data!.conversationEvents).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: next.id } });
    await Promise.all([mine.ws.client.dispose(), theirs.ws.client.dispose()]);
  });

  it('marks a message DELIVERED when a recipient’s live connection receives it', async () => {
    const [writer, reader] = await Promise.all([signUp(server), signUp(server)]);
    const id = await directBetween(server, writer, reader);
    const { ws, first } = await watch(reader, id);
    const sent = await send(server, writer, id, 'are you there?');
    await first; // the reader never fetches: only the live delivery can mark it

    await server.app.services.delivery.flush();
    const history = await gql(server, History, { conversationId: id }, writer.accessToken);
    expect(history.data!.messages.edges.at(-1)!.node).toMatchObject({ id: sent.id, status: 'DELIVERED' });
    await ws.client.dispose();
  });

  it('gets a message sent while its subscription was still starting, once', async () => {
    const [writer, reader] = await Promise.all([signUp(server), signUp(server)]);
    const id = await directBetween(server, writer, reader);
    // Fault injection: once the reader's subscription listens, its next access read waits
    // until a message has been committed, as a busy database may make it.
    const sql = server.app.services.sql;
    const query = sql.query;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let armed = false;
    const arm = (topic: string) => (armed ||= topic === `conversation:${id}`);
    server.app.services.bus.activity.on('listen', arm);
    sql.query = ((config: { name?: string; values?: unknown[] }, ...rest: unknown[]) => {
      const held = armed && config?.name === 'conversation-access' && config.values?.[1] === Number(reader.id);
      if (!held) return (query as (...a: unknown[]) => unknown).call(sql, config, ...rest);
      armed = false;
      return gate.then(() => (query as (...a: unknown[]) => unknown).call(sql, config, ...rest));
    }) as typeof sql.query;
    try {
      const ws = connectWs(server, reader.accessToken);
      const events = subscribe(ws, ConversationEvents, { conversationId: id });
      const live = listening(server, `conversation:${id}`);
      const first = nextEvent(events, 'message sent while the subscription started', 5_000);
      await live;
      const sent = await send(server, writer, id, 'in the window');
      open();
      expect((await first).data!.conversationEvents).toMatchObject({ __typename: 'MessageAddedEvent', message: { id: sent.id } });
      // Its event and its row both reached the stream: the next thing is the next message.
      const next = await send(server, writer, id, 'after');
      expect((await nextEvent(events, 'the next message')).data!.conversationEvents).toMatchObject({ message: { id: next.id } });
      await ws.client.dispose();
    } finally {
      sql.query = query;
      server.app.services.bus.activity.off('listen', arm);
    }
  });

  /** Fault injection: the bus loses the next message event of conversation `id`. Returns the repair. */
  const loseNextMessageEvent = (id: string) => loseNextMessageEventOf(server, id);
  const messageId = (r: { data?: { conversationEvents: unknown } | null }) => (r.data!.conversationEvents as { message: { id: string } }).message.id;

  it('fills a gap from the database when an event is lost, keeping the order', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, events, first } = await watch(bob, id);
    const repair = loseNextMessageEvent(id);
    try {
      const m1 = await send(server, alice, id, 'lost on the bus');
      const m2 = await send(server, alice, id, 'arrives');
      const got = [(await first).value!, await nextEvent(events, 'the next message')].map(messageId);
      expect(got).toEqual([m1.id, m2.id]);
    } finally {
      repair();
    }
    await ws.client.dispose();
  });

  it('fills a gap while messages keep coming, not only once they stop', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, first } = await watch(bob, id);
    const repair = loseNextMessageEvent(id);
    try {
      const lost = await send(server, alice, id, 'lost on the bus');
      let arrived = false;
      void first.then(() => (arrived = true));
      // A message every 400 ms for up to 4 s: the gap (filled after about 1.5 s) must not wait for a pause.
      for (let i = 0; i < 10 && !arrived; i++) {
        await send(server, alice, id, `steady ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
      expect(arrived).toBe(true);
      expect(messageId((await first).value!)).toBe(lost.id);
    } finally {
      repair();
    }
    await ws.client.dispose();
  });

  it('reads every hole at once when several events are lost, keeping the order', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, events, first } = await watch(bob, id);
    // Counts the stream's reads of this conversation's messages by seq (its gap reads).
    const messages = server.app.services.db.message;
    const findMany = messages.findMany;
    let gapReads = 0;
    messages.findMany = ((args: { where?: { conversationId?: number; seq?: unknown } }) => {
      if (args?.where?.conversationId === Number(id) && args.where.seq) gapReads++;
      return findMany.call(messages, args as never);
    }) as typeof findMany;
    try {
      const sent = [];
      for (const [i, lose] of [true, false, true, false].entries()) {
        const repair = lose ? loseNextMessageEvent(id) : () => {};
        sent.push(await send(server, alice, id, `hole test ${i}`));
        repair();
      }
      const got = [(await first).value!, ...(await Promise.all([1, 2, 3].map(() => nextEvent(events, 'the next message'))))].map(messageId);
      expect(got).toEqual(sent.map((m) => m.id));
      expect(gapReads).toBe(1);
    } finally {
      messages.findMany = findMany;
    }
    await ws.client.dispose();
  });

  it('stops a removed member’s stream at once with FORBIDDEN', async () => {
    const carol = await signUp(server);
    const made = await gql(server, CreateConversation, { input: { kind: 'GROUP', title: 'Leavers', participantIds: [bob.id, carol.id] } }, alice.accessToken);
    const id = made.data!.createConversation.id;
    const { ws, events, first } = await watch(carol, id);
    await send(server, alice, id, 'before');
    expect((await first).value!.data!.conversationEvents).toMatchObject({ message: { content: 'before' } });
    await gql(server, RemoveMember, { conversationId: id, userId: carol.id }, alice.accessToken);
    await send(server, alice, id, 'after');
    const last = await nextEvent(events, 'the end of the stream');
    expect(code(last)).toBe('FORBIDDEN');
    expect(await events.next()).toMatchObject({ done: true });
    await ws.client.dispose();
  });

  it('gets every message, in order, after reading nothing while megabytes were sent to it', async () => {
    const id = await directBetween(server, alice, bob);
    const { ws, events, first } = await watch(bob, id);
    const socket = await ws.socket;
    socket.pause();
    const filler = 'x'.repeat(8000);
    const sent: string[] = [];
    for (let round = 0; round < 30; round++) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => send(server, alice, id, `${round * 20 + i} ${filler}`)));
      sent.push(...batch.map((m) => m.id));
    }
    socket.resume();
    const received = [(await first).value!];
    while (received.length < sent.length) received.push(await nextEvent(events, `message ${received.length + 1} of ${sent.length}`));
    const ids = received.map((r) => (r.data!.conversationEvents as { message: { id: string } }).message.id);
    expect(ids).toEqual([...sent].sort((a, b) => Number(a) - Number(b)));
    await ws.client.dispose();
  });
});

const PrivateSenderFields = graphql(`
  subscription PrivateSenderFields($conversationId: ID!) {
    conversationEvents(conversationId: $conversationId) {
      ... on MessageAddedEvent {
        message {
          id
          sender {
            id
            email
          }
        }
      }
    }
  }
`);

const PublicSenderFields = graphql(`
  subscription PublicSenderFields($conversationId: ID!) {
    conversationEvents(conversationId: $conversationId) {
      ... on MessageAddedEvent {
        message {
          id
          content
          sender {
            id
            username
          }
        }
      }
    }
  }
`);

type EventResults = { executed: number; shared: number };
const eventResults = async () => ((await (await fetch(`${server.url}/metrics`)).json()) as { eventResults: EventResults }).eventResults;

describe('subscribers of one conversation', () => {
  /** Three sockets subscribed to `document` in a new group of writer and reader; resolves with their first events. */
  async function threeSubscribers<R>(writer: SignedUp, reader: SignedUp, document: TypedDocumentNode<R, { conversationId: string }>) {
    const id = await directBetween(server, writer, reader);
    const live = listening(server, `conversation:${id}`, 3);
    const clients = [writer, reader, reader].map((u) => connectWs(server, u.accessToken));
    const firsts = clients.map((ws) => subscribe(ws, document, { conversationId: id }).next());
    await live;
    return { id, clients, firsts };
  }

  it('each see private fields only as they may, each from a result of their own', async () => {
    const email = `${Date.now()}@example.com`;
    const [writer, reader] = await Promise.all([signUp(server, { email: `w${email}` }), signUp(server)]);
    const { id, clients, firsts } = await threeSubscribers(writer, reader, PrivateSenderFields);
    const before = await eventResults();
    const sent = await send(server, writer, id, 'who sees my email?');
    const [own, other, another] = (await Promise.all(firsts)).map((r) => r.value!.data!.conversationEvents);
    expect(own).toEqual({ message: { id: sent.id, sender: { id: writer.id, email: `w${email}` } } });
    expect(other).toEqual({ message: { id: sent.id, sender: { id: writer.id, email: null } } });
    expect(another).toEqual(other);
    expect(await eventResults()).toEqual({ executed: before.executed + 3, shared: before.shared });
    await Promise.all(clients.map((ws) => ws.client.dispose()));
  });

  it('share one result of an event when they select the same public fields', async () => {
    const [writer, reader] = await Promise.all([signUp(server), signUp(server)]);
    const { id, clients, firsts } = await threeSubscribers(writer, reader, PublicSenderFields);
    const before = await eventResults();
    const sent = await send(server, writer, id, 'one result for all');
    const received = (await Promise.all(firsts)).map((r) => r.value!.data!.conversationEvents);
    const expected = { message: { id: sent.id, content: 'one result for all', sender: { id: writer.id, username: writer.username } } };
    expect(received).toEqual([expected, expected, expected]);
    expect(await eventResults()).toEqual({ executed: before.executed + 1, shared: before.shared + 2 });
    await Promise.all(clients.map((ws) => ws.client.dispose()));
  });
});

describe('userEvents', () => {
  it('carries new messages and conversation updates with the unread count', async () => {
    const [writer, reader] = await Promise.all([signUp(server), signUp(server)]);
    const id = await directBetween(server, writer, reader);
    const ws = connectWs(server, reader.accessToken);
    const live = listening(server, `user:${reader.id}`);
    const events = subscribe(ws, UserEvents);
    const first = events.next();
    await live;
    const sent = await send(server, writer, id, 'ping');
    expect((await first).value!.data!.userEvents).toEqual({ __typename: 'MessageAddedEvent', message: { id: sent.id, content: 'ping', conversationId: id } });
    expect((await nextEvent(events, 'conversation update')).data!.userEvents).toEqual({
      __typename: 'ConversationUpdatedEvent',
      conversation: { id, title: null, unreadCount: 1, lastMessage: { id: sent.id } },
    });
    await gql(server, MarkRead, { conversationId: id }, reader.accessToken);
    expect((await nextEvent(events, 'read update')).data!.userEvents).toMatchObject({ conversation: { id, unreadCount: 0 } });
    await ws.client.dispose();
  });

  it('masks an unexpected failure in an event as "Unexpected error." and goes on', async () => {
    const reader = await signUp(server);
    const ws = connectWs(server, reader.accessToken);
    const live = listening(server, `user:${reader.id}`);
    const events = subscribe(ws, UserEvents);
    const first = events.next();
    await live;
    // An update of a conversation that is gone: resolving it fails inside the server.
    await server.app.services.bus.publish(`user:${reader.id}`, { type: 'conversationUpdated', conversationId: 2_000_000_000 });
    const failed = (await first).value!;
    expect(failed.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
    expect(JSON.stringify(failed)).not.toMatch(/null for non-nullable|ConversationUpdatedEvent\.conversation/);
    const writer = await signUp(server);
    const id = await directBetween(server, writer, reader);
    expect((await nextEvent(events, 'the next update')).data!.userEvents).toMatchObject({ __typename: 'ConversationUpdatedEvent', conversation: { id } });
    await ws.client.dispose();
  });
});

describe('catch-up', () => {
  it('gets everything sent while disconnected, with no gap and no duplicate', async () => {
    const id = await directBetween(server, alice, bob);
    const first = await watch(bob, id);
    const seen = await send(server, alice, id, 'seen live');
    expect((await first.first).value!.data!.conversationEvents).toMatchObject({ message: { id: seen.id } });
    first.ws.client.terminate(); // the network drops
    await first.ws.closed;

    const missed = [];
    for (const text of ['missed 1', 'missed 2', 'missed 3']) missed.push((await send(server, alice, id, text)).id);

    const again = await watch(bob, id);
    const caughtUp = await gql(server, History, { conversationId: id, first: 100, after: seen.id }, bob.accessToken);
    expect(caughtUp.data!.messages.edges.map((e) => e.node.id)).toEqual(missed);
    const next = await send(server, alice, id, 'live again');
    expect((await again.first).value!.data!.conversationEvents).toMatchObject({ message: { id: next.id } });
    await again.ws.client.dispose();
  });
});

describe('subscription clean-up', () => {
  // A server of its own, so no other test's clients are counted.
  let fresh: TestServer;
  beforeAll(async () => {
    fresh = await startServer();
  });
  afterAll(() => fresh?.stop());

  it('is back to the starting counts after 1,000 clients subscribe and go away', async () => {
    const server = fresh;
    const metrics = async () => (await (await fetch(`${server.url}/metrics`)).json()) as { websockets: number; subscriptions: number; topics: number; redisChannels: number };
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const before = await metrics();
    expect(before.websockets).toBe(0);
    const id = await directBetween(server, alice, bob);
    const batches = 10;
    for (let b = 0; b < batches; b++) {
      const live = listening(server, `conversation:${id}`, 100);
      const clients = Array.from({ length: 100 }, () => connectWs(server, bob.accessToken));
      const streams = clients.map((ws) => subscribe(ws, ConversationEvents, { conversationId: id }).next());
      await live;
      // Every one of them is live: each receives this typing event.
      await gql(server, SetTyping, { conversationId: id, isTyping: b % 2 === 0 }, alice.accessToken);
      const received = await Promise.all(streams);
      expect(received.every((r) => r.value?.data?.conversationEvents.__typename === 'TypingEvent')).toBe(true);
      await Promise.all(clients.map(async (ws) => {
        await ws.client.dispose();
        await ws.closed;
      }));
    }
    const after = await metrics();
    expect(after).toMatchObject({ websockets: 0, subscriptions: before.subscriptions, topics: before.topics, redisChannels: before.redisChannels });
  }, 120_000);
});
