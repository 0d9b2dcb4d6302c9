import { GatewayError, type Data } from '../../gateway/gateway.ts';
import { graphql } from '../../generated/compat/index.ts';
import type { UpdateProfileInput } from '../../generated/compat/graphql.ts';
import { seedStatus } from '../errors.ts';
import { collect, intQuery, newestMessages } from '../paging.ts';
import type { RestDialect, RestRequest, Route } from '../rest.ts';
import { idParam, textField, type Run } from '../shared.ts';
import {
  accountJson,
  contentOf,
  errorBody,
  existingPrivateChat,
  fileJson,
  integerField,
  privateChat,
  privateMessageJson,
  profileJson,
  publicMessageJson,
  publicRoomId,
  sendTo,
  userJson,
  worded,
  type FileData,
  type UserData,
} from './shape.ts';

/**
 * The seed lists "all" messages and users; a list stops at `?limit=` (100 unless asked, at
 * most 500) so one request cannot read a whole busy room. Past the first users by id, a
 * client finds someone with `?search=` (part of a username or display name).
 */
const LIST_DEFAULT = 100;
const LIST_MAX = 500;

/** Our input fields under the seed's names, for the messages of refused input. */
const USER_INPUT = { avatarUrl: 'avatar_url' };
const FILE_INPUT = { name: 'filename', url: 'file_url', size: 'file_size', messageId: 'public_message_id', conversationId: 'private_chat_id' };

const UPDATE_USER = graphql(`
  mutation FlaskChatUpdateUser($input: UpdateProfileInput!, $userId: ID) { updateProfile(input: $input, userId: $userId) { ...FlaskChatUser } }
`);

/** History of a room or a private chat, read back from the newest message. */
const HISTORY = graphql(`
  query FlaskChatHistory($id: ID!, $last: Int!, $before: String) {
    messages(conversationId: $id, last: $last, before: $before) { pageInfo { hasPreviousPage startCursor } edges { node { ...FlaskChatMessage } } }
  }
`);

const USERS = graphql(`
  query FlaskChatUsers($first: Int!, $after: String, $search: String) {
    users(first: $first, after: $after, search: $search) { pageInfo { hasNextPage endCursor } edges { node { ...FlaskChatUser } } }
  }
`);

const ok = (body: unknown) => ({ status: 200, body });
const created = (body: unknown) => ({ status: 201, body });
const listLimit = (req: RestRequest) => intQuery(req.query, 'limit', LIST_DEFAULT, 1, LIST_MAX);

const routes: Route[] = [
  {
    method: 'POST',
    path: '/api/auth/register',
    async handle(req) {
      const [username, email, password] = ['username', 'email', 'password'].map((field) => textField(req.body, field, true));
      const avatarUrl = textField(req.body, 'avatar_url');
      const data = await worded(
        req.run(graphql(`mutation FlaskChatRegister($input: RegisterInput!) { register(input: $input) { user { ...FlaskChatUser } } }`), {
          input: { username, email, password, avatarUrl },
        }),
        {},
        USER_INPUT,
      );
      return created({ message: 'User registered successfully', user: userJson(data.register.user) });
    },
  },
  {
    method: 'POST',
    path: '/api/auth/login',
    async handle(req) {
      const [identifier, password] = ['username', 'password'].map((field) => textField(req.body, field, true));
      const data = await worded(
        req.run(graphql(`mutation FlaskChatLogin($input: LoginInput!) { login(input: $input) { accessToken user { ...FlaskChatUser } } }`), {
          input: { identifier, password },
        }),
        { UNAUTHENTICATED: 'Invalid credentials' },
      );
      return ok({ message: 'Login successful', access_token: data.login.accessToken, user: userJson(data.login.user) });
    },
  },
  {
    method: 'POST',
    path: '/api/auth/logout',
    async handle(req) {
      await req.run(graphql(`mutation FlaskChatLogout { logout }`));
      return ok({ message: 'Logout successful' });
    },
  },
  {
    method: 'GET',
    path: '/api/messages',
    async handle(req) {
      const messages = await newestMessages(req.run, HISTORY, await publicRoomId(req.run), listLimit(req));
      return ok({ messages: messages.map(publicMessageJson) });
    },
  },
  {
    method: 'POST',
    path: '/api/messages',
    async handle(req) {
      const content = contentOf(req.body);
      return created(publicMessageJson(await sendTo(req.run, await publicRoomId(req.run), content)));
    },
  },
  {
    method: 'DELETE',
    path: '/api/messages/:message_id',
    async handle(req) {
      await deleteOwn(req.run, await publicMessage(req.run, req.params.message_id));
      return ok({ message: 'Message deleted' });
    },
  },
  {
    method: 'GET',
    path: '/api/messages/private/:other_user_id',
    async handle(req) {
      const limit = listLimit(req);
      const chatId = await existingPrivateChat(req.run, idParam(req.params.other_user_id, 'User'));
      const messages = chatId ? await newestMessages(req.run, HISTORY, chatId, limit) : [];
      return ok({ messages: messages.map(privateMessageJson) });
    },
  },
  {
    method: 'POST',
    path: '/api/messages/private/:other_user_id',
    async handle(req) {
      const content = contentOf(req.body);
      const chatId = await privateChat(req.run, idParam(req.params.other_user_id, 'User'));
      return created(privateMessageJson(await sendTo(req.run, chatId, content)));
    },
  },
  {
    method: 'DELETE',
    path: '/api/messages/private/:other_user_id/:message_id',
    async handle(req) {
      const notFound = new GatewayError('NOT_FOUND', 'Message not found or invalid chat');
      // No chat with yourself or with nobody: the seed calls that an invalid chat, not bad input.
      const chatId = await existingPrivateChat(req.run, idParam(req.params.other_user_id, 'User')).catch((err) => {
        if (err instanceof GatewayError && (err.code === 'NOT_FOUND' || err.code === 'BAD_USER_INPUT')) return null;
        throw err;
      });
      const messageId = idParam(req.params.message_id, 'Message');
      if (!chatId || !(await holds(req.run, chatId, messageId))) throw notFound;
      await deleteOwn(req.run, messageId);
      return ok({ message: 'Message deleted' });
    },
  },
  {
    method: 'POST',
    path: '/api/files',
    async handle(req) {
      const input = {
        name: textField(req.body, 'filename', true),
        url: textField(req.body, 'file_url', true),
        size: fileSize(req.body),
        ...(await association(req.run, req.body)),
      };
      const data = await worded(
        req.run(graphql(`mutation FlaskChatLinkFile($input: LinkFileInput!) { linkFile(input: $input) { ...FlaskChatFile } }`), { input }),
        {},
        FILE_INPUT,
      );
      return created(fileJson(data.linkFile));
    },
  },
  {
    method: 'GET',
    path: '/api/files',
    async handle(req) {
      return ok((await files(req.run, {})).map(fileJson));
    },
  },
  {
    method: 'GET',
    path: '/api/files/:file_id',
    async handle(req) {
      const data = await worded(
        req.run(graphql(`query FlaskChatFile($id: ID!) { file(id: $id) { ...FlaskChatFile } }`), { id: idParam(req.params.file_id, 'File') }),
        { FORBIDDEN: 'Access denied' },
      );
      return ok({ file: fileJson(data.file) });
    },
  },
  {
    method: 'DELETE',
    path: '/api/files/:file_id',
    async handle(req) {
      await worded(req.run(graphql(`mutation FlaskChatDeleteFile($id: ID!) { deleteFile(id: $id) }`), { id: idParam(req.params.file_id, 'File') }), {
        FORBIDDEN: 'Access denied',
      });
      return ok({ message: 'File deleted' });
    },
  },
  {
    method: 'GET',
    path: '/api/files/public/:message_id',
    async handle(req) {
      const messageId = await publicMessage(req.run, req.params.message_id);
      return ok({ files: (await files(req.run, { messageId })).map(fileJson) });
    },
  },
  {
    method: 'GET',
    path: '/api/files/private/:chat_id',
    async handle(req) {
      const conversationId = await directChat(req.run, req.params.chat_id);
      return ok({ files: (await files(req.run, { conversationId })).map(fileJson) });
    },
  },
  {
    method: 'GET',
    path: '/api/users',
    async handle(req) {
      const search = req.query.get('search') || null;
      const { nodes } = await collect(req.run, USERS, { search }, { connection: (data) => data.users, direction: 'forward', count: listLimit(req) });
      return ok({ users: nodes.map(profileJson) });
    },
  },
  {
    method: 'GET',
    path: '/api/users/:user_id',
    async handle(req) {
      return ok({ user: profileJson(await existingUser(req.run, req.params.user_id)) });
    },
  },
  {
    method: 'PUT',
    path: '/api/users/:user_id',
    async handle(req) {
      const { id } = await existingUser(req.run, req.params.user_id);
      const input: UpdateProfileInput = {};
      for (const [field, ours] of [['username', 'username'], ['email', 'email'], ['avatar_url', 'avatarUrl']] as const) {
        if (field in req.body) input[ours] = textField(req.body, field);
      }
      const data = await worded(req.run(UPDATE_USER, { input, userId: id }), {}, USER_INPUT);
      return ok({ message: 'User updated successfully', user: accountJson(data.updateProfile) });
    },
  },
  {
    method: 'DELETE',
    path: '/api/users/:user_id',
    async handle(req) {
      const { id } = await existingUser(req.run, req.params.user_id);
      await req.run(graphql(`mutation FlaskChatDeleteUser($id: ID!) { deleteUser(id: $id) }`), { id });
      return ok({ message: 'User deleted successfully' });
    },
  },
];

/** A user by the seed's `user_id`, or the seed's 404. */
async function existingUser(run: Run, rawId: string): Promise<UserData> {
  const data = await run(graphql(`query FlaskChatUser($id: ID!) { user(id: $id) { ...FlaskChatUser } }`), { id: idParam(rawId, 'User') });
  if (!data.user) throw new GatewayError('NOT_FOUND', 'User not found');
  return data.user;
}

async function deleteOwn(run: Run, messageId: string) {
  await worded(run(graphql(`mutation FlaskChatDeleteMessage($id: ID!) { deleteMessage(id: $id) }`), { id: messageId }), {
    FORBIDDEN: 'Can only delete own messages',
  });
}

/**
 * Whether a message is in a conversation: its history is asked for the one message after
 * `id - 1`. Safe because the messages connection's cursor is the message id itself
 * (`toCursor` in src/modules/messages/schema.ts), so that page starts at `id` when it is there.
 */
async function holds(run: Run, conversationId: string, messageId: string): Promise<boolean> {
  const id = Number(messageId);
  if (!Number.isSafeInteger(id)) return false;
  const data = await run(
    graphql(`
      query FlaskChatFindMessage($conversationId: ID!, $after: String!) {
        messages(conversationId: $conversationId, after: $after, first: 1) { edges { node { id } } }
      }
    `),
    { conversationId, after: String(id - 1) },
  );
  return data.messages.edges[0]?.node.id === messageId;
}

/** A message of the public room, by the seed's `message_id`. */
async function publicMessage(run: Run, rawId: unknown): Promise<string> {
  const messageId = idParam(rawId, 'Message');
  if (!(await holds(run, await publicRoomId(run), messageId))) throw new GatewayError('NOT_FOUND', 'Message not found');
  return messageId;
}

/** A private chat by its `chat_id`: one of the caller's direct conversations. */
async function directChat(run: Run, rawId: unknown): Promise<string> {
  const id = idParam(rawId, 'Chat');
  const data = await worded(run(graphql(`query FlaskChatChat($id: ID!) { conversation(id: $id) { kind } }`), { id }), { NOT_FOUND: 'Chat not found' });
  if (data.conversation.kind !== 'DIRECT') throw new GatewayError('NOT_FOUND', 'Chat not found');
  return id;
}

/** What a file is attached to: exactly one of a public message and a private chat. */
async function association(run: Run, body: Data) {
  const given = (field: string) => body[field] != null && body[field] !== '';
  if (given('public_message_id') === given('private_chat_id')) {
    const problem = 'give exactly one of public_message_id and private_chat_id';
    throw GatewayError.badField('public_message_id', problem);
  }
  return given('public_message_id')
    ? { messageId: await publicMessage(run, integerField(body, 'public_message_id')) }
    : { conversationId: await directChat(run, integerField(body, 'private_chat_id')) };
}

/** GraphQL's Int is 32 bits: a size past it is out of bounds anyway, and linkFile says which bound. */
const INT_MAX = 2 ** 31 - 1;

function fileSize(body: Data): number {
  const size = Number(integerField(body, 'file_size'));
  return Math.max(-INT_MAX, Math.min(size, INT_MAX));
}

async function files(run: Run, filter: { messageId?: string; conversationId?: string }): Promise<FileData[]> {
  const data = await run(
    graphql(`query FlaskChatFiles($messageId: ID, $conversationId: ID) { files(messageId: $messageId, conversationId: $conversationId) { ...FlaskChatFile } }`),
    filter,
  );
  return data.files;
}

export const flaskChatRest: RestDialect = {
  name: 'flask-chat',
  mount: '/flask-chat',
  routes,
  errorReply(err) {
    // Flask answers a taken username or email with 400, like any refused input.
    return { status: seedStatus(err.code), body: errorBody(err) };
  },
};
