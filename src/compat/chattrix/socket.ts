import * as cookie from 'cookie';
import type { Data } from '../../gateway/gateway.ts';
import { graphql } from '../../generated/compat/index.ts';
import { conversationIdOf, followContactsPresence, idParam, num } from '../shared.ts';
import { ConnectRefused, forbiddenAtConnect, type DialectSession, type SocketIoDialect } from '../../realtime/session.ts';
import { forwarded } from '../../http/policy.ts';
import { sendMessage } from './rest.ts';
import { SESSION_COOKIE, trustedOrigin } from './session.ts';
import { conversationJson, errorJson, messageJson, userJson } from './shape.ts';

const USER_EVENTS = graphql(`
  subscription ChattrixUserEvents {
    userEvents { __typename ... on ConversationUpdatedEvent { conversation { ...ChattrixConversation } } }
  }
`);

const CONVERSATION_EVENTS = graphql(`
  subscription ChattrixConversationEvents($id: ID!) {
    conversationEvents(conversationId: $id) {
      __typename
      ... on MessageAddedEvent { message { ...ChattrixMessage } }
      ... on MessageEditedEvent { message { ...ChattrixMessage } }
      ... on MessageDeletedEvent { messageId conversationId }
      ... on TypingEvent { conversationId isTyping user { ...ChattrixUser } }
    }
  }
`);

const PRESENCE = graphql(`
  subscription ChattrixPresence($ids: [ID!]!) { presence(userIds: $ids) { isOnline lastSeenAt user { ...ChattrixUser } } }
`);

/**
 * Chattrix's Socket.IO namespace, signed in by the same `session` cookie as the REST API.
 * Conversation changes and contacts' presence arrive from connect; messages, edits, deletions
 * and typing come for the conversations the socket joined.
 */
export const chattrixSocket: SocketIoDialect = {
  name: 'chattrix',
  namespace: '/chattrix',
  async token({ headers }, services) {
    // The cookie goes along with a handshake any page opens, so a browser's Origin must be ours
    // (as for REST writes). Clients without an Origin are not browsers and choose their cookies.
    if (headers.origin && !trustedOrigin(headers.origin, forwarded(services.config, headers, undefined).host, services)) {
      const message = 'Request refused: this origin is not allowed';
      throw forbiddenAtConnect(message, { success: false, message, code: 'CSRF_FAILED' });
    }
    const token = cookie.parse(headers.cookie ?? '')[SESSION_COOKIE];
    return token || null;
  },
  refuse(reason) {
    return new ConnectRefused(reason, { success: false, message: reason, code: 'UNAUTHENTICATED' });
  },
  async onConnect(session) {
    await session.follow('user', USER_EVENTS, {}, ({ userEvents: e }) => {
      if (e.__typename === 'ConversationUpdatedEvent') session.send('conversation_updated', conversationJson(e.conversation));
    });
    await followContactsPresence(session, PRESENCE, (user, isOnline) => {
      session.send(isOnline ? 'user_online' : 'user_offline', { user: userJson(user) });
    });
  },
  events: {
    async join_conversation(session, data) {
      const id = conversationIdOf(data);
      await session.follow(`conversation:${id}`, CONVERSATION_EVENTS, { id }, ({ conversationEvents: e }) => {
        if (e.__typename === 'MessageAddedEvent') session.send('new_message', messageJson(e.message));
        else if (e.__typename === 'MessageEditedEvent') session.send('message_edited', messageJson(e.message));
        else if (e.__typename === 'MessageDeletedEvent') session.send('message_deleted', { message_id: num(e.messageId), conversation_id: num(e.conversationId) });
        // Typing is news for the others, not for the one typing.
        else if (e.__typename === 'TypingEvent' && e.user.id !== String(session.viewer.id)) {
          session.send(e.isTyping ? 'user_typing' : 'user_stopped_typing', { user: userJson(e.user), conversation_id: num(e.conversationId) });
        }
      });
    },
    async leave_conversation(session, data) {
      await session.unfollow(`conversation:${conversationIdOf(data)}`);
    },
    async send_message(session, data) {
      await sendMessage(session.run.bind(session), conversationIdOf(data), data);
    },
    async typing_start(session, data) {
      await setTyping(session, data, true);
    },
    async typing_stop(session, data) {
      await setTyping(session, data, false);
    },
    async mark_as_read(session, data) {
      await session.run(graphql(`mutation ChattrixRead($id: ID!, $messageId: ID) { markConversationRead(conversationId: $id, messageId: $messageId) { id } }`), {
        id: conversationIdOf(data),
        messageId: data.message_id == null ? null : idParam(data.message_id, 'Message'),
      });
    },
  },
  errorPayload(err) {
    return errorJson(err).body;
  },
};

async function setTyping(session: DialectSession, data: Data, isTyping: boolean) {
  await session.run(graphql(`mutation ChattrixTyping($id: ID!, $on: Boolean!) { setTyping(conversationId: $id, isTyping: $on) }`), {
    id: conversationIdOf(data),
    on: isTyping,
  });
}
