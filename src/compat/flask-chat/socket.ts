import { graphql } from '../../generated/compat/index.ts';
import { ConnectRefused, handshakeToken, type DialectSession, type SessionUser, type SocketIoDialect } from '../../realtime/session.ts';
import { contentOf, errorBody, existingPrivateChat, liveMessageJson, otherUserOf, privateChat, publicRoomId, sendTo } from './shape.ts';

/** The seed's room names; `public_chat` is also where `get_online_users` looks. */
const PUBLIC_ROOM = 'public_chat';
const privateRoom = (chatId: string) => `private_chat_${chatId}`;

const USER_EVENTS = graphql(`
  subscription FlaskChatUserEvents {
    userEvents { __typename ... on MessageAddedEvent { message { ...FlaskChatMessage } } }
  }
`);

const PUBLIC_EVENTS = graphql(`
  subscription FlaskChatPublicEvents($id: ID!) {
    conversationEvents(conversationId: $id) { __typename ... on MessageAddedEvent { message { ...FlaskChatMessage } } }
  }
`);

/** A connection's user as the seed's events show it (a connection of this instance or another). */
function who({ id, username }: SessionUser) {
  return { id, username };
}

/** Tells the public room (on every instance) that the session's user came or went. */
function announce(session: DialectSession, event: 'user_joined' | 'user_left', verb: string) {
  const user = who(session.user);
  const payload = { user, message: `${user.username} ${verb} the public chat` };
  session.broadcast(PUBLIC_ROOM, event, payload);
  return payload;
}

/**
 * flask-chat's Socket.IO namespace. Public messages reach the sockets that joined the public
 * chat; private messages reach every socket of both users, joined or not, since our users hear
 * of their direct conversations wherever they are connected.
 */
export const flaskChatSocket: SocketIoDialect = {
  name: 'flask-chat',
  namespace: '/flask-chat',
  token: async (handshake) => handshakeToken(handshake),
  refuse(reason) {
    return new ConnectRefused(reason, { message: reason });
  },
  async onConnect(session) {
    // userEvents also brings group conversations, which flask-chat does not know.
    const direct = new Map<string, boolean>();
    await session.follow('user', USER_EVENTS, {}, async ({ userEvents: e }) => {
      if (e.__typename !== 'MessageAddedEvent') return;
      const id = e.message.conversationId;
      if (!direct.has(id)) {
        const { conversation } = await session.run(graphql(`query FlaskChatKind($id: ID!) { conversation(id: $id) { kind } }`), { id });
        direct.set(id, conversation.kind === 'DIRECT');
      }
      if (direct.get(id)) session.send('new_private_message', liveMessageJson(e.message, 'sender'));
    });
    // Sent once the socket listens, so a client may act on it.
    session.send('connected', { message: 'Connected to chat server', user: who(session.user) });
  },
  events: {
    async join_public(session) {
      const run = session.run.bind(session);
      const id = await publicRoomId(run);
      await session.run(graphql(`mutation FlaskChatJoinPublic($id: ID!) { joinConversation(conversationId: $id) { id } }`), { id });
      await session.follow('public', PUBLIC_EVENTS, { id }, ({ conversationEvents: e }) => {
        if (e.__typename === 'MessageAddedEvent') session.send('new_public_message', liveMessageJson(e.message, 'user'));
      });
      await session.join(PUBLIC_ROOM);
      announce(session, 'user_joined', 'joined');
    },
    async leave_public(session) {
      await session.unfollow('public');
      await session.leave(PUBLIC_ROOM);
      // The leaver is out of the room by now, and hears it directly.
      session.send('user_left', announce(session, 'user_left', 'left'));
    },
    async send_public_message(session, data) {
      const run = session.run.bind(session);
      const content = contentOf(data);
      await sendTo(run, await publicRoomId(run), content);
    },
    async join_private(session, data) {
      const otherUserId = otherUserOf(data);
      const chatId = await privateChat(session.run.bind(session), otherUserId);
      await session.join(privateRoom(chatId));
      session.send('joined_private', { chat_id: Number(chatId), room: privateRoom(chatId), other_user_id: Number(otherUserId) });
    },
    async leave_private(session, data) {
      // Without a chat there is no room to leave, and leaving must not make one.
      const chatId = await existingPrivateChat(session.run.bind(session), otherUserOf(data));
      if (chatId) await session.leave(privateRoom(chatId));
    },
    async send_private_message(session, data) {
      const run = session.run.bind(session);
      const otherUserId = otherUserOf(data);
      const content = contentOf(data);
      await sendTo(run, await privateChat(run, otherUserId), content);
    },
    async get_online_users(session) {
      const members = await session.members(PUBLIC_ROOM);
      // One entry per user, however many sockets they have in the room.
      const users = new Map(members.map((member) => [member.id, who(member)]));
      // The seed's answer is the array itself, not an object holding it.
      session.send('online_users', [...users.values()]);
    },
  },
  errorPayload: errorBody,
};
