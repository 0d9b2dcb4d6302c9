import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { code, gql, signUp, type SignedUp } from './helpers/clients.ts';
import {
  DeleteMessage,
  directBetween,
  EditMessage,
  GetConversation,
  History,
  MarkRead,
  send,
  SendMessage,
  CreateConversation,
} from './helpers/chat.ts';
import { Login } from './helpers/operations.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';

let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;
let conversationId: string;
const admin = { username: uniqueName('admin'), password: 'admin password 1' };

beforeAll(async () => {
  server = await startServer({ ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password });
  [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
  conversationId = await directBetween(server, alice, bob);
});
afterAll(() => server?.stop());

describe('sendMessage', () => {
  it('trims content and stores it as text, never as HTML', async () => {
    const html = '  <img src=x onerror=alert(1)> & <b>bold</b>  ';
    const message = await send(server, alice, conversationId, html);
    expect(message).toMatchObject({ content: html.trim(), kind: 'TEXT', isEdited: false, status: 'SENT', sender: { id: alice.id } });
    const history = await gql(server, History, { conversationId, last: 1 }, bob.accessToken);
    expect(history.data!.messages.edges[0].node.content).toBe(html.trim());
  });

  it('sends to a recipient, opening the direct conversation when needed', async () => {
    const carol = await signUp(server);
    const result = await gql(server, SendMessage, { input: { recipientId: alice.id, content: 'hi alice' } }, carol.accessToken);
    expect(result.errors).toBeUndefined();
    const direct = await directBetween(server, alice, carol);
    expect(result.data!.sendMessage.conversationId).toBe(direct);
  });

  it.each([
    ['content', { content: '   ' }],
    ['content', { content: 'x'.repeat(10_001) }],
    ['conversationId', { content: 'two targets', recipientId: '1' }],
    ['kind', { content: 'x', kind: 'SYSTEM' as const }],
    ['attachmentIds', { content: 'x', attachmentIds: ['987654321'] }],
    ['replyToId', { content: 'x', replyToId: '987654321' }],
    ['clientId', { content: 'x', clientId: 'c'.repeat(65) }],
    ['content', { content: 'a NUL \u0000 inside' }],
    ['clientId', { content: 'x', clientId: 'nul\u0000' }],
  ])('refuses a bad %s with BAD_USER_INPUT', async (field, input) => {
    const result = await gql(server, SendMessage, { input: { conversationId, ...input } }, alice.accessToken);
    expect(code(result)).toBe('BAD_USER_INPUT');
    expect(result.errors![0].extensions!.fields).toHaveProperty(field);
  });

  it('refuses a conversation id beyond the database’s integers as bad input, naming it', async () => {
    const result = await gql(server, SendMessage, { input: { conversationId: '2147483648', content: 'too far' } }, alice.accessToken);
    expect(code(result)).toBe('BAD_USER_INPUT');
    expect(result.errors![0].extensions!.fields).toHaveProperty('conversationId');
  });

  it('accepts exactly 10,000 characters', async () => {
    expect((await send(server, alice, conversationId, 'y'.repeat(10_000))).content).toHaveLength(10_000);
  });

  it('replies only within the same conversation', async () => {
    const original = await send(server, bob, conversationId, 'question?');
    const reply = await gql(server, SendMessage, { input: { conversationId, content: 'answer', replyToId: original.id } }, alice.accessToken);
    expect(reply.data!.sendMessage.replyTo).toEqual({ id: original.id, content: 'question?' });

    const elsewhere = await directBetween(server, alice, await signUp(server));
    const crossed = await gql(server, SendMessage, { input: { conversationId: elsewhere, content: 'x', replyToId: original.id } }, alice.accessToken);
    expect(code(crossed)).toBe('BAD_USER_INPUT');
    expect(crossed.errors![0].extensions!.fields!.replyToId).toMatch(/same conversation/);
  });

  it('returns the first message when the same clientId is sent again, even at the same moment', async () => {
    const clientId = uniqueName('client');
    const input = { conversationId, content: 'once only', clientId };
    const results = await Promise.all(Array.from({ length: 5 }, () => gql(server, SendMessage, { input }, alice.accessToken)));
    const ids = new Set(results.map((r) => r.data!.sendMessage.id));
    expect(ids.size).toBe(1);
    const later = await gql(server, SendMessage, { input }, alice.accessToken);
    expect(later.data!.sendMessage.id).toBe([...ids][0]);
    const history = await gql(server, History, { conversationId, last: 20 }, alice.accessToken);
    expect(history.data!.messages.edges.filter((e) => e.node.clientId === clientId)).toHaveLength(1);
    // The same clientId from another sender is another message.
    const fromBob = await gql(server, SendMessage, { input }, bob.accessToken);
    expect(fromBob.data!.sendMessage.id).not.toBe([...ids][0]);
  });

  it('keeps one total order with no gap when 20 clients send at once', async () => {
    const room = await gql(server, CreateConversation, { input: { kind: 'PUBLIC', title: uniqueName('room') } }, alice.accessToken);
    const roomId = room.data!.createConversation.id;
    const senders = await Promise.all(Array.from({ length: 20 }, () => signUp(server)));
    const sent = await Promise.all(senders.map((s, i) => send(server, s, roomId, `message ${i}`)));
    const history = await gql(server, History, { conversationId: roomId, first: 100 }, alice.accessToken);
    const nodes = history.data!.messages.edges.map((e) => e.node);
    expect(nodes).toHaveLength(20);
    expect(nodes.map((n) => n.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const ids = nodes.map((n) => Number(n.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(new Set(nodes.map((n) => n.id))).toEqual(new Set(sent.map((m) => m.id)));
  });
});

describe('the message writer', () => {
  it('writes sends that arrive together in one statement, and one at fault fails alone', async () => {
    const clientId = uniqueName('client');
    await gql(server, SendMessage, { input: { conversationId, content: 'first', clientId } }, alice.accessToken);
    const { messageWriter } = server.app.services;
    const message = (senderId: string, content: string, repeat = false) => ({
      conversationId: Number(conversationId),
      senderId: Number(senderId),
      kind: 'TEXT' as const,
      content,
      replyToId: null,
      clientId: repeat ? clientId : null,
      fileIds: [],
    });
    // The first write starts at once; the other four wait for it and go out together.
    const writes = [
      message(bob.id, 'alone'),
      message(alice.id, 'together 1'),
      message(alice.id, 'a repeated clientId', true),
      message(bob.id, 'together 2'),
      message(alice.id, 'together 3'),
    ].map((m) => messageWriter.write(m).then((row) => row!, (err: unknown) => err));
    const [alone, one, repeated, two, three] = await Promise.all(writes);
    expect(repeated).toMatchObject({ code: '23505' }); // the unique index on (senderId, clientId)
    const stored = [alone, one, two, three] as Array<{ id: number; seq: number; content: string }>;
    expect(stored.map((m) => m.content)).toEqual(['alone', 'together 1', 'together 2', 'together 3']);
    expect(stored.map((m) => m.seq - stored[0].seq)).toEqual([0, 1, 2, 3]);
    expect([...stored].sort((a, b) => a.id - b.id)).toEqual(stored);
  });

  it('numbers each conversation’s messages in the order they arrived when one statement writes several conversations', async () => {
    const groups = await Promise.all(
      ['one', 'two'].map((title) => gql(server, CreateConversation, { input: { kind: 'GROUP', title, participantIds: [bob.id] } }, alice.accessToken)),
    );
    const targets = [conversationId, ...groups.map((g) => g.data!.createConversation.id)].map(Number);
    const { messageWriter } = server.app.services;
    // Interleaved: while the first statement runs, the rest queue up and go out together.
    const arrivals = Array.from({ length: 30 }, (_, i) => ({ conversationId: targets[i % 3], content: `arrival ${i}` }));
    const stored = await Promise.all(
      arrivals.map((a) =>
        messageWriter.write({ ...a, senderId: Number(alice.id), kind: 'TEXT', replyToId: null, clientId: null, fileIds: [] }).then((row) => row!),
      ),
    );
    for (const target of targets) {
      const mine = stored.filter((m) => m.conversationId === target);
      expect(mine).toHaveLength(10);
      expect(mine.map((m) => m.seq - mine[0].seq)).toEqual(Array.from({ length: 10 }, (_, i) => i));
      expect([...mine].sort((a, b) => a.id - b.id)).toEqual(mine);
    }
  });
});

describe('editMessage and deleteMessage', () => {
  it('let only the sender edit, and mark the message edited', async () => {
    const message = await send(server, alice, conversationId, 'typo');
    expect(code(await gql(server, EditMessage, { id: message.id, content: 'hacked' }, bob.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, EditMessage, { id: message.id, content: ' ' }, alice.accessToken))).toBe('BAD_USER_INPUT');
    const edited = await gql(server, EditMessage, { id: message.id, content: 'fixed' }, alice.accessToken);
    expect(edited.data!.editMessage).toMatchObject({ content: 'fixed', isEdited: true });
    expect(edited.data!.editMessage.editedAt).not.toBeNull();
  });

  it('remove a message from history for the sender or an admin, and update the last message', async () => {
    const first = await send(server, alice, conversationId, 'keep me');
    const second = await send(server, alice, conversationId, 'delete me');
    expect(code(await gql(server, DeleteMessage, { id: second.id }, bob.accessToken))).toBe('FORBIDDEN');
    expect((await gql(server, DeleteMessage, { id: second.id }, alice.accessToken)).data!.deleteMessage).toBe(second.id);
    const conversation = await gql(server, GetConversation, { id: conversationId }, bob.accessToken);
    expect(conversation.data!.conversation.lastMessage).toEqual({ id: first.id, content: 'keep me' });
    const history = await gql(server, History, { conversationId, last: 50 }, bob.accessToken);
    expect(history.data!.messages.edges.map((e) => e.node.id)).not.toContain(second.id);
    expect(code(await gql(server, DeleteMessage, { id: second.id }, alice.accessToken))).toBe('NOT_FOUND');

    const adminToken = (await gql(server, Login, { input: { identifier: admin.username, password: admin.password } })).data!.login.accessToken;
    expect((await gql(server, DeleteMessage, { id: first.id }, adminToken)).data!.deleteMessage).toBe(first.id);
  });
});

describe('history', () => {
  let room: string;
  let ids: string[];
  let member: SignedUp;
  beforeAll(async () => {
    const [x, y] = await Promise.all([signUp(server), signUp(server)]);
    room = await directBetween(server, x, y);
    ids = [];
    for (let i = 1; i <= 25; i++) ids.push((await send(server, i % 2 ? x : y, room, `m${i}`)).id);
    member = x;
  });

  it('gives the newest page by default and pages backwards with before', async () => {
    const latest = await gql(server, History, { conversationId: room }, member.accessToken);
    expect(latest.data!.messages.edges.map((e) => e.node.id)).toEqual(ids);
    const last10 = await gql(server, History, { conversationId: room, last: 10 }, member.accessToken);
    expect(last10.data!.messages.edges.map((e) => e.node.id)).toEqual(ids.slice(15));
    expect(last10.data!.messages.pageInfo.hasPreviousPage).toBe(true);
    const before = await gql(server, History, { conversationId: room, last: 10, before: last10.data!.messages.pageInfo.startCursor }, member.accessToken);
    expect(before.data!.messages.edges.map((e) => e.node.id)).toEqual(ids.slice(5, 15));
  });

  it('catches up after the last id seen, with no gap and no duplicate', async () => {
    const seen = ids[11];
    const page1 = await gql(server, History, { conversationId: room, first: 8, after: seen }, member.accessToken);
    const page2 = await gql(server, History, { conversationId: room, first: 8, after: page1.data!.messages.pageInfo.endCursor }, member.accessToken);
    expect(page1.data!.messages.pageInfo.hasNextPage).toBe(true);
    expect(page2.data!.messages.pageInfo.hasNextPage).toBe(false);
    expect([...page1.data!.messages.edges, ...page2.data!.messages.edges].map((e) => e.node.id)).toEqual(ids.slice(12));
  });

  it('refuses a malformed cursor', async () => {
    expect(code(await gql(server, History, { conversationId: room, first: 5, after: 'abc' }, member.accessToken))).toBe('BAD_USER_INPUT');
  });
});

describe('read state', () => {
  it('counts unread messages, moves only forward, and turns status SENT → DELIVERED → READ', async () => {
    const [reader, writer] = await Promise.all([signUp(server), signUp(server)]);
    const room = await directBetween(server, writer, reader);
    const m1 = await send(server, writer, room, 'one');
    const m2 = await send(server, writer, room, 'two');
    const m3 = await send(server, writer, room, 'three');
    const status = async () =>
      (await gql(server, History, { conversationId: room }, writer.accessToken)).data!.messages.edges.map((e) => e.node.status);
    expect(await status()).toEqual(['SENT', 'SENT', 'SENT']);

    expect((await gql(server, GetConversation, { id: room }, reader.accessToken)).data!.conversation.unreadCount).toBe(3);
    await gql(server, History, { conversationId: room, first: 2 }, reader.accessToken); // the reader's app fetched two
    await server.app.services.delivery.flush();
    expect(await status()).toEqual(['DELIVERED', 'DELIVERED', 'SENT']);

    const read = await gql(server, MarkRead, { conversationId: room, messageId: m2.id }, reader.accessToken);
    expect(read.data!.markConversationRead.unreadCount).toBe(1);
    expect(await status()).toEqual(['READ', 'READ', 'SENT']);
    const backwards = await gql(server, MarkRead, { conversationId: room, messageId: m1.id }, reader.accessToken);
    expect(backwards.data!.markConversationRead.unreadCount).toBe(1);
    await gql(server, MarkRead, { conversationId: room }, reader.accessToken);
    expect(await status()).toEqual(['READ', 'READ', 'READ']);
    expect((await gql(server, GetConversation, { id: room }, reader.accessToken)).data!.conversation.unreadCount).toBe(0);
    const foreign = await gql(server, MarkRead, { conversationId: room, messageId: '987654321' }, reader.accessToken);
    expect(code(foreign)).toBe('BAD_USER_INPUT');
    expect(m3.status).toBe('SENT');
  });
});
