import { parseDatabaseId } from '../../lib/ids.ts';
import { GatewayError, type Data } from '../../gateway/gateway.ts';
import { graphql } from '../../generated/compat/index.ts';
import { collect, intQuery } from '../paging.ts';
import type { RestDialect, RestReply, RestRequest, Route } from '../rest.ts';
import { idParam, messageKind, num, textField, type Run } from '../shared.ts';
import { authorizeSession, clearedCookies, sessionCookies, sessionSeconds } from './session.ts';
import {
  conversationJson,
  createdConversationJson,
  errorJson,
  KINDS,
  listedUserJson,
  MAX_FILE_BYTES,
  messageJson,
  sentMessageJson,
  userJson,
  type MessageData,
} from './shape.ts';

/** The seed's largest `limit`, and the largest page our connections give. */
const PAGE = 100;
/**
 * Largest `offset` of the user directory: our connections page by cursor, so an offset is
 * walked from the start, a page per query; this bounds what one request may cost.
 */
const MAX_USER_OFFSET = 10_000;
/** Conversations listed at most: GET /api/conversations has no paging. */
const LISTED_CONVERSATIONS = 500;
/** What the profile shows for settings the user never changed. */
const DEFAULT_SETTINGS = { notifications_enabled: true, sound_enabled: true, theme: 'light' };
/** The group a client creates without naming it (our groups have titles). */
const UNNAMED_GROUP = 'Group chat';

const USERS = graphql(`
  query ChattrixUsers($search: String, $first: Int!, $after: String) {
    users(search: $search, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { ...ChattrixUser } } }
  }
`);

const CONVERSATIONS = graphql(`
  query ChattrixConversations($first: Int!, $after: String) {
    conversations(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ...ChattrixConversation } } }
  }
`);

const ok = (body: unknown): RestReply => ({ status: 200, body });
const done = (message: string, extra: Data = {}, status = 200): RestReply => ({ status, body: { success: true, message, ...extra } });
/**
 * A profile field: left out (undefined) keeps it, null or empty clears it; the difference
 * matters there, while elsewhere an empty field is simply absent.
 */
const profileField = (body: Data, field: string) => (Object.hasOwn(body, field) ? textField(body, field) : undefined);

const routes: Route[] = [
  {
    method: 'POST',
    path: '/register',
    limit: 'auth',
    async handle(req) {
      const input = {
        username: textField(req.body, 'username', true),
        password: textField(req.body, 'password', true),
        email: textField(req.body, 'email'),
        displayName: textField(req.body, 'display_name'),
      };
      try {
        const data = await req.run(
          graphql(`mutation ChattrixRegister($input: RegisterInput!) { register(input: $input) { user { ...ChattrixUser email createdAt } } }`),
          { input },
        );
        const { user } = data.register;
        return done('User registered successfully', { user: { ...userJson(user), email: user.email, created_at: user.createdAt } }, 201);
      } catch (err) {
        throw err instanceof GatewayError && err.code === 'CONFLICT' ? taken(err, input) : err;
      }
    },
  },
  {
    method: 'POST',
    path: '/login',
    limit: 'auth',
    async handle(req) {
      const remember = [true, 1, 'true', 'on', '1'].includes(req.body.remember_me);
      const data = await req.run(graphql(`mutation ChattrixLogin($input: LoginInput!) { login(input: $input) { ...ChattrixSignedIn } }`), {
        input: {
          identifier: textField(req.body, 'username', true),
          password: textField(req.body, 'password', true),
          sessionSeconds: sessionSeconds(req.services, remember),
        },
      });
      return {
        ...done('Login successful', { user: userJson(data.login.user), redirect_url: '/chat' }),
        cookies: sessionCookies(req, data.login, remember),
      };
    },
  },
  {
    method: 'POST',
    path: '/logout',
    limit: 'auth',
    async handle(req) {
      try {
        await req.run(graphql(`mutation ChattrixLogout { logout }`));
      } catch (err) {
        // Signing out of a session that already ended still clears its cookies.
        if (!(err instanceof GatewayError) || err.code !== 'UNAUTHENTICATED') throw err;
      }
      return { ...done('Logged out successfully'), cookies: clearedCookies(req) };
    },
  },
  {
    method: 'GET',
    path: '/api/user/profile',
    async handle(req) {
      const { me } = await req.run(graphql(`query ChattrixProfile { me { ...ChattrixUser email bio createdAt settings } }`));
      if (!me) throw new GatewayError('UNAUTHENTICATED', 'Authentication required');
      return ok({
        ...userJson(me),
        email: me.email,
        bio: me.bio,
        last_seen: me.lastSeenAt,
        is_online: me.isOnline,
        created_at: me.createdAt,
        settings: { ...DEFAULT_SETTINGS, ...(me.settings as object | null) },
      });
    },
  },
  {
    method: 'PUT',
    path: '/api/user/profile',
    async handle(req) {
      const data = await req.run(graphql(`mutation ChattrixUpdateProfile($input: UpdateProfileInput!) { updateProfile(input: $input) { ...ChattrixUser bio } }`), {
        input: { displayName: profileField(req.body, 'display_name'), bio: profileField(req.body, 'bio'), settings: req.body.settings },
      });
      const user = data.updateProfile;
      const { id, username, display_name } = userJson(user);
      return done('Profile updated successfully', { user: { id, username, display_name, bio: user.bio } });
    },
  },
  {
    method: 'POST',
    path: '/api/user/upload-avatar',
    limit: 'uploads',
    maxFileBytes: MAX_FILE_BYTES,
    async handle(req) {
      const data = await req.run(graphql(`mutation ChattrixAvatar($file: Upload!) { uploadAvatar(file: $file) { avatarUrl } }`), { file: upload(req) });
      return done('Profile picture updated successfully', { profile_pic_url: data.uploadAvatar.avatarUrl });
    },
  },
  {
    method: 'GET',
    path: '/api/users',
    async handle(req) {
      const limit = Math.min(intQuery(req.query, 'limit', 50, 1), PAGE);
      const offset = intQuery(req.query, 'offset', 0, 0, MAX_USER_OFFSET);
      const search = req.query.get('search')?.trim() || null;
      const { nodes, totalCount } = await collect(req.run, USERS, { search }, {
        connection: (data) => data.users,
        direction: 'forward',
        count: limit,
        skip: offset,
      });
      return ok({ users: nodes.map(listedUserJson), total: totalCount, limit, offset });
    },
  },
  {
    method: 'GET',
    path: '/api/conversations',
    async handle(req) {
      const { nodes } = await collect(req.run, CONVERSATIONS, {}, {
        connection: (data) => data.conversations,
        direction: 'forward',
        count: LISTED_CONVERSATIONS,
      });
      return ok({ conversations: nodes.map(conversationJson) });
    },
  },
  {
    method: 'POST',
    path: '/api/conversations',
    async handle(req) {
      const type = textField(req.body, 'type', true)!;
      const kind = Object.hasOwn(KINDS, type) ? KINDS[type] : null;
      if (!kind) throw GatewayError.badField('type', `must be one of ${Object.keys(KINDS).join(', ')}`);
      const ids: unknown = req.body.participant_ids ?? [];
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'number' || typeof id === 'string')) {
        throw GatewayError.badField('participant_ids', 'must be a list of user ids');
      }
      const title = textField(req.body, 'name') ?? textField(req.body, 'title') ?? (kind === 'GROUP' ? UNNAMED_GROUP : null);
      // The seed names the field `name`; the operation's own refusal would name `title` and echo its validator.
      if (kind === 'PUBLIC' && title == null) throw GatewayError.badField('name', 'is required');
      const data = await req.run(
        graphql(`
          mutation ChattrixCreateConversation($input: CreateConversationInput!) {
            createConversation(input: $input) { id kind createdAt participants { ...ChattrixUser } }
          }
        `),
        { input: { kind, participantIds: ids.map(String), title } },
      );
      return done('Conversation created successfully', { conversation: createdConversationJson(data.createConversation) }, 201);
    },
  },
  {
    method: 'GET',
    path: '/api/conversations/:conversation_id/messages',
    // Reading history is general use: the seed's messages limit is for sending them.
    async handle(req) {
      const conversationId = idParam(req.params.conversation_id, 'Conversation');
      const limit = Math.min(intQuery(req.query, 'limit', 50, 1), PAGE);
      const before = messageIdQuery(req, 'before');
      const after = messageIdQuery(req, 'after');
      // `after` reads forward from a message; otherwise history is read back from `before` (or the newest).
      const page = after ? { first: limit, after, before } : { last: limit, before };
      const data = await req.run(
        graphql(`
          query ChattrixMessages($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
            messages(conversationId: $id, first: $first, after: $after, last: $last, before: $before) {
              pageInfo { hasNextPage hasPreviousPage } edges { node { ...ChattrixMessage } }
            }
          }
        `),
        { id: conversationId, ...page },
      );
      const { edges, pageInfo } = data.messages;
      return ok({
        messages: edges.map((e) => messageJson(e.node)),
        has_more: after ? pageInfo.hasNextPage : pageInfo.hasPreviousPage,
        conversation_id: num(conversationId),
      });
    },
  },
  {
    method: 'POST',
    path: '/api/conversations/:conversation_id/messages',
    limit: 'messages',
    maxFileBytes: MAX_FILE_BYTES,
    async handle(req) {
      const conversationId = idParam(req.params.conversation_id, 'Conversation');
      const fileUrl = textField(req.body, 'file_url');
      const attachmentIds = req.files.file ? [(await uploadFile(req, conversationId)).id] : fileUrl ? [uploadedFileId(fileUrl)] : [];
      const message = await sendMessage(req.run, conversationId, req.body, attachmentIds);
      return done('Message sent successfully', { message_data: sentMessageJson(message) }, 201);
    },
  },
  {
    method: 'PUT',
    path: '/api/messages/:message_id',
    limit: 'messages',
    async handle(req) {
      const data = await req.run(graphql(`mutation ChattrixEdit($id: ID!, $content: String!) { editMessage(id: $id, content: $content) { ...ChattrixMessage } }`), {
        id: idParam(req.params.message_id, 'Message'),
        // Without content, an edit would empty the message rather than change it.
        content: textField(req.body, 'content', true),
      });
      const { id, content, edited, edited_at } = messageJson(data.editMessage);
      return done('Message updated successfully', { message_data: { id, content, edited, edited_at } });
    },
  },
  {
    method: 'DELETE',
    path: '/api/messages/:message_id',
    limit: 'messages',
    async handle(req) {
      await req.run(graphql(`mutation ChattrixDelete($id: ID!) { deleteMessage(id: $id) }`), { id: idParam(req.params.message_id, 'Message') });
      return done('Message deleted successfully');
    },
  },
  {
    method: 'POST',
    path: '/api/upload',
    limit: 'uploads',
    maxFileBytes: MAX_FILE_BYTES,
    async handle(req) {
      const named = textField(req.body, 'conversation_id');
      const conversationId = named ? idParam(named, 'Conversation') : null;
      const file = await uploadFile(req, conversationId);
      return done('File uploaded successfully', { file: { url: file.url, name: file.name, size: file.size, type: file.mimeType } });
    },
  },
  {
    method: 'GET',
    path: '/api/vapid-public-key',
    async handle(req) {
      const data = await req.run(graphql(`query ChattrixVapidKey { vapidPublicKey }`));
      return ok({ public_key: data.vapidPublicKey });
    },
  },
  {
    method: 'POST',
    path: '/api/subscribe',
    async handle(req) {
      const subscription: unknown = req.body.subscription;
      const keys: unknown = isObject(subscription) ? subscription.keys : null;
      const endpoint = isObject(subscription) ? subscription.endpoint : null;
      const p256dh = isObject(keys) ? keys.p256dh : null;
      const auth = isObject(keys) ? keys.auth : null;
      if (![endpoint, p256dh, auth].every((v) => typeof v === 'string' && v !== '')) {
        throw GatewayError.badField('subscription', 'must have endpoint, keys.p256dh and keys.auth');
      }
      await req.run(graphql(`mutation ChattrixSubscribe($input: PushSubscriptionInput!) { savePushSubscription(input: $input) }`), {
        input: { endpoint, p256dh, auth, userAgent: req.headers['user-agent'] ?? null },
      });
      return done('Subscription saved successfully');
    },
  },
  {
    method: 'DELETE',
    path: '/api/subscribe',
    async handle(req) {
      await req.run(graphql(`mutation ChattrixUnsubscribe($endpoint: String!) { deletePushSubscription(endpoint: $endpoint) }`), {
        endpoint: textField(req.body, 'endpoint', true),
      });
      return done('Unsubscribed successfully');
    },
  },
];

/** Sends `body` ({content, type}) to a conversation, with files already uploaded (REST and socket alike). */
export async function sendMessage(run: Run, conversationId: string, body: Data, attachmentIds: string[] = []): Promise<MessageData> {
  const type = textField(body, 'type');
  const data = await run(graphql(`mutation ChattrixSend($input: SendMessageInput!) { sendMessage(input: $input) { ...ChattrixMessage } }`), {
    input: {
      conversationId,
      content: textField(body, 'content') ?? '',
      // Without a type, a message with a file takes the file's kind (image, audio…).
      kind: type ? messageKind(type, 'type') : null,
      attachmentIds,
    },
  });
  return data.sendMessage;
}

/** The form's `file` as a GraphQL Upload; BAD_USER_INPUT when the form has none. */
function upload(req: RestRequest) {
  const file = req.files.file;
  if (!file) throw GatewayError.badField('file', 'is required');
  return file.upload();
}

async function uploadFile(req: RestRequest, conversationId: string | null) {
  const data = await req.run(
    graphql(`mutation ChattrixUpload($file: Upload!, $conversationId: ID) { uploadFile(file: $file, conversationId: $conversationId) { id url name size mimeType } }`),
    { file: upload(req), conversationId },
  );
  return data.uploadFile;
}

/** Our file id in a link /api/upload returned (`<origin>/files/<id>/<name>?…`). */
function uploadedFileId(url: string): string {
  const match = /^(?:https?:\/\/[^/]+)?\/files\/(\d+)\//.exec(url);
  if (!match) throw GatewayError.badField('file_url', 'must be a url returned by /api/upload');
  return match[1];
}

function isObject(value: unknown): value is Data {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The seed's message for a name someone already has, e.g. "Username 'johndoe' is already taken". */
function taken(err: GatewayError, input: Record<string, string | null>) {
  const field = Object.keys(err.fields)[0] ?? 'username';
  const label = field[0].toUpperCase() + field.slice(1);
  return new GatewayError('CONFLICT', `${label} already exists`, { [field]: `${label} '${input[field]}' is already taken` });
}

function messageIdQuery(req: RestRequest, name: string): string | null {
  const raw = req.query.get(name);
  if (raw == null || raw === '') return null;
  if (parseDatabaseId(raw) === null) throw GatewayError.badField(name, 'must be a message id');
  return raw;
}

export const chattrixRest: RestDialect = {
  name: 'chattrix',
  mount: '/chattrix',
  routes,
  limits: {
    default: { points: 60, seconds: 60 },
    auth: { points: 10, seconds: 60 },
    uploads: { points: 20, seconds: 60 },
    messages: { points: 100, seconds: 60 },
  },
  authorize: authorizeSession,
  errorReply(err) {
    return errorJson(err);
  },
};
