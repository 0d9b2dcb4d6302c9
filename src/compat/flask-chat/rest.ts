import { GatewayError, type Data } from '../gateway.ts';
import type { RestDialect, RestRequest, Route } from '../rest.ts';
import { statusOf } from '../rest.ts';
import { idParam, intQuery, newestMessages, required, type Run } from '../shared.ts';
import {
  accountJson,
  contentOf,
  errorBody,
  FILE_FIELDS,
  fileJson,
  MESSAGE_FIELDS,
  privateChat,
  privateMessageJson,
  profileJson,
  publicMessageJson,
  publicRoomId,
  sendTo,
  USER_FIELDS,
  userJson,
  worded,
} from './shape.ts';

/**
 * The seed lists "all" messages and users; a list stops at `?limit=` (100 unless asked, at
 * most 500) so one request cannot read a whole busy room.
 */
const LIST_DEFAULT = 100;
const LIST_MAX = 500;

/** Our input fields under the seed's names, for the messages of refused input. */
const USER_INPUT = { avatarUrl: 'avatar_url' };
const FILE_INPUT = { name: 'filename', url: 'file_url', size: 'file_size', messageId: 'public_message_id', conversationId: 'private_chat_id' };

const UPDATE_USER = /* GraphQL */ `
  mutation FlaskChatUpdateUser($input: UpdateProfileInput!, $userId: ID) { updateProfile(input: $input, userId: $userId) { ${USER_FIELDS} } }
`;

const ok = (body: unknown) => ({ status: 200, body });
const created = (body: unknown) => ({ status: 201, body });
const text = (v: unknown) => (v == null || v === '' ? null : String(v));
const listLimit = (req: RestRequest) => intQuery(req.query, 'limit', LIST_DEFAULT, 1, LIST_MAX);

const routes: Route[] = [
  {
    method: 'POST',
    path: '/api/auth/register',
    async handle(req) {
      const [username, email, password] = ['username', 'email', 'password'].map((field) => String(required(req.body, field)));
      const avatarUrl = text(req.body.avatar_url) || null;
      const data = await worded(
        req.run(`mutation FlaskChatRegister($input: RegisterInput!) { register(input: $input) { user { ${USER_FIELDS} } } }`, {
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
      const [identifier, password] = ['username', 'password'].map((field) => String(required(req.body, field)));
      const data = await worded(
        req.run(`mutation FlaskChatLogin($input: LoginInput!) { login(input: $input) { accessToken user { ${USER_FIELDS} } } }`, {
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
      await req.run('mutation FlaskChatLogout { logout }');
      return ok({ message: 'Logout successful' });
    },
  },
  {
    method: 'GET',
    path: '/api/messages',
    async handle(req) {
      const messages = await newestMessages(req.run, await publicRoomId(req.run), listLimit(req), MESSAGE_FIELDS);
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
      const messages = await newestMessages(req.run, await privateChat(req.run, req.params.other_user_id), limit, MESSAGE_FIELDS);
      return ok({ messages: messages.map(privateMessageJson) });
    },
  },
  {
    method: 'POST',
    path: '/api/messages/private/:other_user_id',
    async handle(req) {
      const content = contentOf(req.body);
      return created(privateMessageJson(await sendTo(req.run, await privateChat(req.run, req.params.other_user_id), content)));
    },
  },
  {
    method: 'DELETE',
    path: '/api/messages/private/:other_user_id/:message_id',
    async handle(req) {
      const chatId = await privateChat(req.run, req.params.other_user_id);
      const messageId = idParam(req.params.message_id, 'Message');
      if (!(await holds(req.run, chatId, messageId))) throw new GatewayError('NOT_FOUND', 'Message not found or invalid chat');
      await deleteOwn(req.run, messageId);
      return ok({ message: 'Message deleted' });
    },
  },
  {
    method: 'POST',
    path: '/api/files',
    async handle(req) {
      const input = {
        name: String(required(req.body, 'filename')),
        url: String(required(req.body, 'file_url')),
        size: fileSize(req.body),
        ...(await association(req.run, req.body)),
      };
      const data = await worded(
        req.run(`mutation FlaskChatLinkFile($input: LinkFileInput!) { linkFile(input: $input) { ${FILE_FIELDS} } }`, { input }),
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
        req.run(`query FlaskChatFile($id: ID!) { file(id: $id) { ${FILE_FIELDS} } }`, { id: idParam(req.params.file_id, 'File') }),
        { FORBIDDEN: 'Access denied' },
      );
      return ok({ file: fileJson(data.file) });
    },
  },
  {
    method: 'DELETE',
    path: '/api/files/:file_id',
    async handle(req) {
      await worded(req.run(`mutation FlaskChatDeleteFile($id: ID!) { deleteFile(id: $id) }`, { id: idParam(req.params.file_id, 'File') }), {
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
      const wanted = listLimit(req);
      const users: Data[] = [];
      let after: string | null = null;
      while (users.length < wanted) {
        const data = await req.run(
          `query FlaskChatUsers($first: Int!, $after: String) {
            users(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${USER_FIELDS} } } }
          }`,
          { first: Math.min(100, wanted - users.length), after },
        );
        users.push(...data.users.edges.map((e: Data) => e.node));
        if (!data.users.pageInfo.hasNextPage) break;
        after = data.users.pageInfo.endCursor;
      }
      return ok({ users: users.map(profileJson) });
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
      const input: Data = {};
      for (const [field, ours] of [['username', 'username'], ['email', 'email'], ['avatar_url', 'avatarUrl']]) {
        if (field in req.body) input[ours] = text(req.body[field]);
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
      await req.run(`mutation FlaskChatDeleteUser($id: ID!) { deleteUser(id: $id) }`, { id });
      return ok({ message: 'User deleted successfully' });
    },
  },
];

/** Sets a new account's avatar; a refused avatar undoes the registration, so a retry can succeed. */
async function existingUser(run: Run, rawId: string): Promise<Data> {
  const data = await run(`query FlaskChatUser($id: ID!) { user(id: $id) { ${USER_FIELDS} } }`, { id: idParam(rawId, 'User') });
  if (!data.user) throw new GatewayError('NOT_FOUND', 'User not found');
  return data.user;
}

async function deleteOwn(run: Run, messageId: string) {
  await worded(run(`mutation FlaskChatDeleteMessage($id: ID!) { deleteMessage(id: $id) }`, { id: messageId }), {
    FORBIDDEN: 'Can only delete own messages',
  });
}

/** Whether a message is in a conversation: its history, paged by message id, is asked for that one id. */
async function holds(run: Run, conversationId: string, messageId: string): Promise<boolean> {
  const id = Number(messageId);
  if (!Number.isSafeInteger(id)) return false;
  const data = await run(
    `query FlaskChatFindMessage($conversationId: ID!, $after: String!) {
      messages(conversationId: $conversationId, after: $after, first: 1) { edges { node { id } } }
    }`,
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
  const data = await worded(run(`query FlaskChatChat($id: ID!) { conversation(id: $id) { kind } }`, { id }), { NOT_FOUND: 'Chat not found' });
  if (data.conversation.kind !== 'DIRECT') throw new GatewayError('NOT_FOUND', 'Chat not found');
  return id;
}

/** What a file is attached to: exactly one of a public message and a private chat. */
async function association(run: Run, body: Data) {
  const given = (field: string) => body[field] != null && body[field] !== '';
  if (given('public_message_id') === given('private_chat_id')) {
    const problem = 'give exactly one of public_message_id and private_chat_id';
    throw new GatewayError('BAD_USER_INPUT', `public_message_id: ${problem}`, { public_message_id: problem });
  }
  return given('public_message_id')
    ? { messageId: await publicMessage(run, body.public_message_id) }
    : { conversationId: await directChat(run, body.private_chat_id) };
}

/** GraphQL's Int is 32 bits: a size past it is out of bounds anyway, and linkFile says which bound. */
const INT_MAX = 2 ** 31 - 1;

function fileSize(body: Data): number {
  const size = Number(required(body, 'file_size'));
  if (!Number.isSafeInteger(size)) throw new GatewayError('BAD_USER_INPUT', 'file_size: must be an integer', { file_size: 'must be an integer' });
  return Math.max(-INT_MAX, Math.min(size, INT_MAX));
}

async function files(run: Run, filter: { messageId?: string; conversationId?: string }): Promise<Data[]> {
  const data = await run(
    `query FlaskChatFiles($messageId: ID, $conversationId: ID) { files(messageId: $messageId, conversationId: $conversationId) { ${FILE_FIELDS} } }`,
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
    return { status: err.code === 'CONFLICT' ? 400 : statusOf(err.code), body: errorBody(err) };
  },
};
