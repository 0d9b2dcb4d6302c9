import { GatewayError, type Data } from '../../gateway/gateway.ts';
import { graphql } from '../../generated/compat/index.ts';
import { contacts, conversationIdOf, followContactsPresence } from '../shared.ts';
import { ConnectRefused, handshakeToken, type DialectSession, type SocketIoDialect } from '../../realtime/session.ts';
import { sendInput } from './rest.ts';
import { detail, handle, messageJson } from './shape.ts';

const USER_EVENTS = graphql(`
  subscription SocketChatUserEvents {
    userEvents { __typename ... on MessageAddedEvent { message { ...SocketChatMessage } } }
  }
`);

const CONVERSATION_EVENTS = graphql(`
  subscription SocketChatConversationEvents($id: ID!) {
    conversationEvents(conversationId: $id) {
      __typename
      ... on TypingEvent { conversationId isTyping user { ...SocketChatUser } }
      ... on ReadReceiptEvent { conversationId user { ...SocketChatUser } }
    }
  }
`);

const CONTACTS = graphql(`
  query SocketChatContacts { me { id } conversations(first: 100) { edges { node { participants { ...SocketChatUser } } } } }
`);

const PRESENCE = graphql(`
  subscription SocketChatPresence($ids: [ID!]!) { presence(userIds: $ids) { isOnline lastSeenAt user { ...SocketChatUser } } }
`);

/**
 * socket-chat's Socket.IO namespace. New messages of every conversation of the user arrive
 * without joining (as `new_message`, and `message_notification` for others' messages); typing
 * and read events come for the conversations the socket joined.
 */
export const socketChatSocket: SocketIoDialect = {
  name: 'socket-chat',
  namespace: '/socket-chat',
  token: async (handshake) => handshakeToken(handshake),
  refuse() {
    return new ConnectRefused('User not authenticated', { message: 'User not authenticated' });
  },
  async onConnect(session) {
    await session.follow('user', USER_EVENTS, {}, ({ userEvents }) => {
      if (userEvents.__typename !== 'MessageAddedEvent') return;
      const message = userEvents.message;
      session.send('new_message', messageJson(message));
      if (message.sender?.id !== String(session.viewer.id)) {
        const { conversation_id, sender_email, sender_name, message: text } = messageJson(message);
        session.send('message_notification', { conversation_id, sender_email, sender_name, message: text });
      }
    });
    await followContactsPresence(session, PRESENCE, (user, isOnline) => {
      session.send(isOnline ? 'user_online' : 'user_offline', { email: handle(user) });
    });
  },
  events: {
    async send_message(session, data) {
      const input = await sendInput(session.run.bind(session), data);
      await session.run(graphql(`mutation SocketChatSocketSend($input: SendMessageInput!) { sendMessage(input: $input) { id } }`), { input });
    },
    async join_conversation(session, data) {
      const id = conversationIdOf(data);
      await session.follow(`conversation:${id}`, CONVERSATION_EVENTS, { id }, ({ conversationEvents: e }) => {
        if (e.__typename === 'TypingEvent') {
          session.send('user_typing', { conversation_id: e.conversationId, user_email: handle(e.user), typing: e.isTyping });
        } else if (e.__typename === 'ReadReceiptEvent') {
          session.send('marked_as_read', { conversation_id: e.conversationId, user_email: handle(e.user) });
        }
      });
      session.send('joined_conversation', { conversation_id: id });
    },
    async leave_conversation(session, data) {
      const id = conversationIdOf(data);
      await session.unfollow(`conversation:${id}`);
      session.send('left_conversation', { conversation_id: id });
    },
    async mark_as_read(session, data) {
      await session.run(graphql(`mutation SocketChatSocketRead($id: ID!) { markConversationRead(conversationId: $id) { id } }`), {
        id: conversationIdOf(data),
      });
    },
    async typing_start(session, data) {
      await setTyping(session, data, true);
    },
    async typing_stop(session, data) {
      await setTyping(session, data, false);
    },
    async get_online_users(session) {
      const online = (await contacts(session, CONTACTS)).filter((u) => u.isOnline);
      session.send('online_users', { users: online.map(handle) });
    },
  },
  errorPayload(err: GatewayError) {
    return { message: detail(err) };
  },
};

async function setTyping(session: DialectSession, data: Data, isTyping: boolean) {
  await session.run(graphql(`mutation SocketChatTyping($id: ID!, $on: Boolean!) { setTyping(conversationId: $id, isTyping: $on) }`), {
    id: conversationIdOf(data),
    on: isTyping,
  });
}
