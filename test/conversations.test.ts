import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type SignedUp } from './helpers/clients.ts';
import {
  ConversationEvents,
  CreateConversation,
  directBetween,
  EnsureDirect,
  GetConversation,
  History,
  ListConversations,
  MarkRead,
  send,
  SendMessage,
  SetTyping,
} from './helpers/chat.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const PublicRooms = graphql(`
  query PublicRooms {
    publicConversations(first: 50) {
      edges {
        node {
          id
          slug
          title
          kind
        }
      }
    }
  }
`);

const ManageMembers = graphql(`
  mutation ManageMembers($conversationId: ID!, $userIds: [ID!]!) {
    addConversationMembers(conversationId: $conversationId, userIds: $userIds) {
      participants {
        id
      }
    }
  }
`);

const RemoveMember = graphql(`
  mutation RemoveMember($conversationId: ID!, $userId: ID!) {
    removeConversationMember(conversationId: $conversationId, userId: $userId) {
      participants {
        id
      }
    }
  }
`);

const Rename = graphql(`
  mutation Rename($conversationId: ID!, $title: String!) {
    renameConversation(conversationId: $conversationId, title: $title) {
      title
    }
  }
`);

const Leave = graphql(`
  mutation Leave($conversationId: ID!) {
    leaveConversation(conversationId: $conversationId) {
      members {
        role
        user {
          id
        }
      }
    }
  }
`);

let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;
let carol: SignedUp;
let stranger: SignedUp;

beforeAll(async () => {
  server = await startServer();
  [alice, bob, carol, stranger] = await Promise.all([signUp(server), signUp(server), signUp(server), signUp(server)]);
});
afterAll(() => server?.stop());

describe('direct conversations', () => {
  it('are one per pair, whoever opens them and however often', async () => {
    const results = await Promise.all([
      gql(server, EnsureDirect, { userId: bob.id }, alice.accessToken),
      gql(server, EnsureDirect, { userId: alice.id }, bob.accessToken),
      gql(server, CreateConversation, { input: { kind: 'DIRECT', participantIds: [bob.id] } }, alice.accessToken),
    ]);
    const ids = results.map((r) => ('ensureDirectConversation' in r.data! ? r.data.ensureDirectConversation.id : r.data!.createConversation.id));
    expect(new Set(ids).size).toBe(1);
    const conversation = await gql(server, GetConversation, { id: ids[0] }, bob.accessToken);
    expect(conversation.data!.conversation.kind).toBe('DIRECT');
    expect(conversation.data!.conversation.participants.map((p) => p.id).sort()).toEqual([alice.id, bob.id].sort());
  });

  it('refuse yourself, unknown users and more than one other user', async () => {
    const self = await gql(server, EnsureDirect, { userId: alice.id }, alice.accessToken);
    expect(code(self)).toBe('BAD_USER_INPUT');
    expect(self.errors![0].extensions!.fields).toHaveProperty('userId');
    expect(code(await gql(server, EnsureDirect, { userId: '987654321' }, alice.accessToken))).toBe('NOT_FOUND');
    const two = await gql(server, CreateConversation, { input: { kind: 'DIRECT', participantIds: [bob.id, carol.id] } }, alice.accessToken);
    expect(code(two)).toBe('BAD_USER_INPUT');
    expect(two.errors![0].extensions!.fields).toHaveProperty('participantIds');
  });
});

describe('groups', () => {
  it('need a title and existing members', async () => {
    const untitled = await gql(server, CreateConversation, { input: { kind: 'GROUP', participantIds: [bob.id] } }, alice.accessToken);
    expect(code(untitled)).toBe('BAD_USER_INPUT');
    expect(untitled.errors![0].extensions!.fields).toHaveProperty('title');
    const ghost = await gql(server, CreateConversation, { input: { kind: 'GROUP', title: 'G', participantIds: ['987654321'] } }, alice.accessToken);
    expect(code(ghost)).toBe('BAD_USER_INPUT');
    expect(ghost.errors![0].extensions!.fields).toHaveProperty('participantIds');
  });

  it('are managed by their owner; members cannot manage; ownership passes on when the owner leaves', async () => {
    const made = await gql(server, CreateConversation, { input: { kind: 'GROUP', title: 'Team', participantIds: [bob.id] } }, alice.accessToken);
    const group = made.data!.createConversation;
    expect(group.members.find((m) => m.user.id === alice.id)!.role).toBe('OWNER');

    expect(code(await gql(server, ManageMembers, { conversationId: group.id, userIds: [carol.id] }, bob.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, Rename, { conversationId: group.id, title: 'Mine' }, bob.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, Rename, { conversationId: group.id, title: 'x' }, stranger.accessToken))).toBe('FORBIDDEN');

    const added = await gql(server, ManageMembers, { conversationId: group.id, userIds: [carol.id] }, alice.accessToken);
    expect(added.data!.addConversationMembers.participants.map((p) => p.id).sort()).toEqual([alice.id, bob.id, carol.id].sort());
    const renamed = await gql(server, Rename, { conversationId: group.id, title: '  Core team ' }, alice.accessToken);
    expect(renamed.data!.renameConversation.title).toBe('Core team');
    const removed = await gql(server, RemoveMember, { conversationId: group.id, userId: carol.id }, alice.accessToken);
    expect(removed.data!.removeConversationMember.participants.map((p) => p.id).sort()).toEqual([alice.id, bob.id].sort());
    expect(code(await gql(server, GetConversation, { id: group.id }, carol.accessToken))).toBe('FORBIDDEN');

    const left = await gql(server, Leave, { conversationId: group.id }, alice.accessToken);
    expect(left.data!.leaveConversation.members).toEqual([{ role: 'OWNER', user: { id: bob.id } }]);
  });
});

describe('public rooms', () => {
  it('include a default room anyone signed in can read and post in', async () => {
    const rooms = await gql(server, PublicRooms, undefined, stranger.accessToken);
    const general = rooms.data!.publicConversations.edges.map((e) => e.node).find((r) => r.slug === 'general');
    expect(general).toMatchObject({ kind: 'PUBLIC', title: 'General' });
    expect((await gql(server, History, { conversationId: general!.id }, carol.accessToken)).errors).toBeUndefined();
    const posted = await send(server, carol, general!.id, 'hello room');
    expect(posted.sender!.id).toBe(carol.id);
    const mine = await gql(server, ListConversations, { first: 50 }, carol.accessToken);
    expect(mine.data!.conversations.edges.map((e) => e.node.id)).toContain(general!.id);
  });
});

describe('the conversation list', () => {
  it('is ordered by last activity, with the last message and unread count', async () => {
    const [dan, erin, frank] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    const withErin = await directBetween(server, dan, erin);
    const withFrank = await directBetween(server, dan, frank);
    await send(server, erin, withErin, 'one');
    await send(server, erin, withErin, 'two');
    await send(server, frank, withFrank, 'hi dan');
    await send(server, erin, withErin, 'three');

    const page = await gql(server, ListConversations, { first: 10 }, dan.accessToken);
    const nodes = page.data!.conversations.edges.map((e) => e.node);
    expect(nodes.map((c) => c.id)).toEqual([withErin, withFrank]);
    expect(nodes[0]).toMatchObject({ unreadCount: 3, lastMessage: { content: 'three' } });
    expect(nodes[1]).toMatchObject({ unreadCount: 1, lastMessage: { content: 'hi dan' } });

    const firstPage = await gql(server, ListConversations, { first: 1 }, dan.accessToken);
    expect(firstPage.data!.conversations.pageInfo.hasNextPage).toBe(true);
    const second = await gql(server, ListConversations, { first: 1, after: firstPage.data!.conversations.pageInfo.endCursor }, dan.accessToken);
    expect(second.data!.conversations.edges.map((e) => e.node.id)).toEqual([withFrank]);
  });
});

describe('a stranger', () => {
  it('is refused on queries, mutations and subscriptions of a conversation', async () => {
    const id = await directBetween(server, alice, bob);
    expect(code(await gql(server, GetConversation, { id }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, History, { conversationId: id }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, SendMessage, { input: { conversationId: id, content: 'hi' } }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, MarkRead, { conversationId: id }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, SetTyping, { conversationId: id, isTyping: true }, stranger.accessToken))).toBe('FORBIDDEN');
    const ws = connectWs(server, stranger.accessToken);
    expect(code(await nextEvent(subscribe(ws, ConversationEvents, { conversationId: id }), 'refusal'))).toBe('FORBIDDEN');
    await ws.client.dispose();
  });

  it('gets NOT_FOUND for a conversation that does not exist', async () => {
    expect(code(await gql(server, GetConversation, { id: '987654321' }, alice.accessToken))).toBe('NOT_FOUND');
    expect(code(await gql(server, SendMessage, { input: { conversationId: '987654321', content: 'x' } }, alice.accessToken))).toBe('NOT_FOUND');
  });
});
