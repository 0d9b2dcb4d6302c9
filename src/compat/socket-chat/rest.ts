import { GatewayError, type Data } from '../../gateway/gateway.ts';
import { graphql } from '../../generated/compat/index.ts';
import { seedStatus } from '../errors.ts';
import { intQuery, newestMessages } from '../paging.ts';
import type { RestDialect, Route } from '../rest.ts';
import { idParam, messageKind, textField, type Run } from '../shared.ts';
import { detail, handle, messageJson, recipientId, userJson } from './shape.ts';

/** Tokens "valid for 24 hours by default", as the seed says. */
const TOKEN_SECONDS = 24 * 60 * 60;

const ok = (body: unknown) => ({ status: 200, body });

/** History, read back from the newest message (GET …/messages). */
const HISTORY = graphql(`
  query SocketChatHistory($id: ID!, $last: Int!, $before: String) {
    messages(conversationId: $id, last: $last, before: $before) { pageInfo { hasPreviousPage startCursor } edges { node { ...SocketChatMessage } } }
  }
`);

const routes: Route[] = [
  {
    method: 'POST',
    path: '/api/auth/login',
    async handle(req) {
      const data = await req.run(
        graphql(`mutation SocketChatLogin($input: EmailLoginInput!) { emailLogin(input: $input) { accessToken user { ...SocketChatUser } } }`),
        {
          input: {
            email: textField(req.body, 'email', true),
            name: textField(req.body, 'name'),
            avatarUrl: textField(req.body, 'profile_image'),
            password: textField(req.body, 'password'),
            sessionSeconds: TOKEN_SECONDS,
          },
        },
      );
      const { accessToken, user } = data.emailLogin;
      return ok({ access_token: accessToken, token_type: 'bearer', user: userJson(user) });
    },
  },
  {
    method: 'GET',
    path: '/api/users/me',
    async handle(req) {
      const { me } = await req.run(graphql(`query SocketChatMe { me { ...SocketChatUser } }`));
      if (!me) throw new GatewayError('UNAUTHENTICATED', 'Could not validate credentials');
      return ok({ ...userJson(me), is_online: me.isOnline, last_seen: me.lastSeenAt });
    },
  },
  {
    method: 'GET',
    path: '/api/users/search',
    async handle(req) {
      const query = req.query.get('query')?.trim();
      if (!query) throw GatewayError.badField('query', 'is required');
      const data = await req.run(
        graphql(`query SocketChatSearch($search: String!) { me { id } users(search: $search, first: 50) { edges { node { ...SocketChatUser } } } }`),
        { search: query },
      );
      const users = data.users.edges.map((e) => e.node).filter((u) => u.id !== data.me?.id);
      return ok(users.map((u) => ({ ...userJson(u), is_online: u.isOnline })));
    },
  },
  {
    method: 'GET',
    path: '/api/conversations',
    async handle(req) {
      const data = await req.run(
        graphql(`query SocketChatConversations {
          conversations(first: 100) { edges { node { id unreadCount participants { ...SocketChatUser } lastMessage { content createdAt sender { ...SocketChatUser } } } } }
        }`),
      );
      return ok(
        data.conversations.edges.map(({ node: c }) => ({
          conversation_id: c.id,
          participants: c.participants.map(handle),
          last_message: c.lastMessage?.content ?? null,
          last_message_time: c.lastMessage?.createdAt ?? null,
          last_message_sender: handle(c.lastMessage?.sender),
          unread_count: c.unreadCount,
        })),
      );
    },
  },
  {
    method: 'POST',
    path: '/api/conversations/start',
    async handle(req) {
      const userId = await recipientId(req.run, textField(req.body, 'to_email', true));
      const data = await req.run(
        graphql(`mutation SocketChatStart($userId: ID!) { ensureDirectConversation(userId: $userId) { id participants { ...SocketChatUser } } }`),
        { userId },
      );
      const c = data.ensureDirectConversation;
      return ok({ conversation_id: c.id, participants: c.participants.map(handle) });
    },
  },
  {
    method: 'GET',
    path: '/api/conversations/:conversation_id/messages',
    async handle(req) {
      const skip = intQuery(req.query, 'skip', 0, 0, 10_000);
      const limit = intQuery(req.query, 'limit', 50, 1, 500);
      const messages = await newestMessages(req.run, HISTORY, idParam(req.params.conversation_id, 'Conversation'), limit, skip);
      return ok(messages.map((m) => messageJson(m, true)));
    },
  },
  {
    method: 'POST',
    path: '/api/conversations/:conversation_id/mark-read',
    async handle(req) {
      await req.run(graphql(`mutation SocketChatMarkRead($id: ID!) { markConversationRead(conversationId: $id) { id } }`), {
        id: idParam(req.params.conversation_id, 'Conversation'),
      });
      return ok({ message: 'Conversation marked as read' });
    },
  },
  {
    method: 'POST',
    path: '/api/messages/send',
    async handle(req) {
      const data = await req.run(
        graphql(`mutation SocketChatSend($input: SendMessageInput!) { sendMessage(input: $input) { ...SocketChatMessage } }`),
        { input: await sendInput(req.run, req.body) },
      );
      return ok(messageJson(data.sendMessage));
    },
  },
  {
    method: 'GET',
    path: '/health',
    async handle(req) {
      await req.run(graphql(`query SocketChatHealth { __typename }`));
      return ok({ status: 'healthy' });
    },
  },
];

/** The input of sendMessage for a `send_message` body (REST and socket alike). */
export async function sendInput(run: Run, body: Data) {
  return {
    recipientId: await recipientId(run, textField(body, 'to_email', true)),
    content: textField(body, 'message') ?? '',
    kind: messageKind(textField(body, 'message_type'), 'message_type'),
    replyToId: textField(body, 'reply_to'),
  };
}

export const socketChatRest: RestDialect = {
  name: 'socket-chat',
  mount: '/socket-chat',
  routes,
  errorReply(err) {
    // FastAPI answers refused input with 422.
    return { status: seedStatus(err.code, { BAD_USER_INPUT: 422 }), body: { detail: detail(err) } };
  },
};
