import { GatewayError, type Data } from '../../gateway/gateway.ts';
import { graphql, type DocumentType } from '../../generated/compat/index.ts';
import { renameFields } from '../errors.ts';
import { statusOf } from '../rest.ts';
import { idParam, num, required, type Run } from '../shared.ts';

/**
 * flask-chat (seed 002) shows ids as numbers and names fields in snake_case. Its public
 * messages are those of our default public room; a private chat is the direct conversation of
 * two users, and its `chat_id` is that conversation's id.
 */
export const UserFields = graphql(`
  fragment FlaskChatUser on User { id username email avatarUrl createdAt }
`);
export const MessageFields = graphql(`
  fragment FlaskChatMessage on Message { id conversationId content createdAt sender { id username avatarUrl } }
`);
export const FileFields = graphql(`
  fragment FlaskChatFile on File { id name url size createdAt uploaderId messageId conversationId }
`);
export type UserData = DocumentType<typeof UserFields>;
export type MessageData = DocumentType<typeof MessageFields>;
export type FileData = DocumentType<typeof FileFields>;

/** A user as an update reports it. */
export function accountJson(u: UserData) {
  return { id: num(u.id), username: u.username, email: u.email ?? null };
}

/** A user as registration and login report it. */
export function userJson(u: UserData) {
  return { ...accountJson(u), avatar_url: u.avatarUrl ?? null };
}

/** A user as the users endpoints list it. */
export function profileJson(u: UserData) {
  return { ...userJson(u), created_at: u.createdAt };
}

/** What every flask-chat message shape starts with. */
function messageBase(m: MessageData) {
  return { id: num(m.id), content: m.content, timestamp: m.createdAt };
}

export function publicMessageJson(m: MessageData) {
  return { ...messageBase(m), user_id: num(m.sender?.id), username: m.sender?.username ?? null, avatar_url: m.sender?.avatarUrl ?? null };
}

export function privateMessageJson(m: MessageData) {
  return {
    ...messageBase(m),
    sender_id: num(m.sender?.id),
    chat_id: num(m.conversationId),
    username: m.sender?.username ?? null,
    avatar_url: m.sender?.avatarUrl ?? null,
  };
}

/** A message as the socket events carry it: the author under `user` (public) or `sender` (private). */
export function liveMessageJson(m: MessageData, author: 'user' | 'sender') {
  return {
    ...messageBase(m),
    [author]: m.sender ? { id: num(m.sender.id), username: m.sender.username } : null,
    username: m.sender?.username ?? null,
  };
}

/**
 * A file belongs to a public message or to a private chat. Ours belong to a conversation and
 * maybe a message of it, so a file without a message is the chat's.
 */
export function fileJson(f: FileData) {
  return {
    id: num(f.id),
    filename: f.name,
    file_url: f.url,
    file_size: f.size,
    uploaded_at: f.createdAt,
    uploader_id: num(f.uploaderId),
    public_message_id: num(f.messageId),
    private_chat_id: f.messageId == null ? num(f.conversationId) : null,
  };
}

/** The text of a message to send. */
export function contentOf(body: Data): string {
  const content = required(body, 'content');
  if (typeof content !== 'string') throw GatewayError.badField('content', 'must be a string');
  return content;
}

/**
 * Runs `op` and answers its failures in the seed's words: `messages` replaces the message of
 * an error code, `fields` renames our input fields to the seed's (`size` is its `file_size`).
 */
export async function worded<T>(op: Promise<T>, messages: Record<string, string>, fields: Record<string, string> = {}): Promise<T> {
  try {
    return await op;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (messages[err.code]) throw new GatewayError(err.code, messages[err.code], err.fields, err.extensions);
    throw renameFields(err, fields);
  }
}

/**
 * An integer of a request body or event (an id, a size): a JSON integer or a string of digits,
 * as the seed's form and JSON clients send them. Booleans, arrays and objects are refused
 * naming the field, rather than read as 1 or as their one element.
 */
export function integerField(data: Data, field: string): string {
  const value = required(data, field);
  if ((typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^-?\d+$/.test(value))) return String(value);
  throw GatewayError.badField(field, 'must be an integer');
}

/** The `other_user_id` of a socket event, as a user id. */
export function otherUserOf(data: Data): string {
  return idParam(integerField(data, 'other_user_id'), 'User');
}

const YOURSELF = { BAD_USER_INPUT: 'Cannot send message to yourself' };

/** The private chat with `userId` (our direct conversation), made on first use: for sending and joining. */
export async function privateChat(run: Run, userId: string): Promise<string> {
  const data = await worded(
    run(graphql(`mutation FlaskChatPrivateChat($userId: ID!) { ensureDirectConversation(userId: $userId) { id } }`), { userId }),
    YOURSELF,
  );
  return data.ensureDirectConversation.id;
}

/**
 * The private chat with `userId` if there is one. Reading, deleting and leaving look it up
 * without making it, so nobody can put an empty chat in another user's list.
 */
export async function existingPrivateChat(run: Run, userId: string): Promise<string | null> {
  const data = await worded(
    run(graphql(`query FlaskChatExistingChat($userId: ID!) { directConversation(userId: $userId) { id } }`), { userId }),
    YOURSELF,
  );
  return data.directConversation?.id ?? null;
}

export async function publicRoomId(run: Run): Promise<string> {
  const data = await run(graphql(`query FlaskChatPublicRoom { publicRoom { id } }`));
  return data.publicRoom.id;
}

export async function sendTo(run: Run, conversationId: string, content: string): Promise<MessageData> {
  const data = await run(graphql(`mutation FlaskChatSend($input: SendMessageInput!) { sendMessage(input: $input) { ...FlaskChatMessage } }`), {
    input: { conversationId, content },
  });
  return data.sendMessage;
}

/** The seed's error body; unexpected failures say no more than that. */
export function errorBody(err: GatewayError) {
  return { message: statusOf(err.code) === 500 ? 'Internal server error' : err.message };
}
