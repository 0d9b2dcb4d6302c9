import type { Data, GatewayError } from '../../gateway/gateway.ts';
import { graphql, type DocumentType } from '../../generated/compat/index.ts';
import type { ConversationKind } from '../../generated/compat/graphql.ts';
import { renameFields, seedStatus } from '../errors.ts';
import { num, seedKind } from '../shared.ts';

/** Chattrix's JSON (seed 000): numeric ids, snake_case fields, Flask-style success bodies. */
export const UserFields = graphql(`
  fragment ChattrixUser on User { id username displayName avatarUrl isOnline lastSeenAt }
`);
export const MessageFields = graphql(`
  fragment ChattrixMessage on Message {
    id conversationId content kind isEdited editedAt createdAt sender { ...ChattrixUser } attachments { url name size }
  }
`);
export const ConversationFields = graphql(`
  fragment ChattrixConversation on Conversation {
    id kind createdAt updatedAt unreadCount participants { ...ChattrixUser }
    lastMessage { id content kind createdAt sender { id username displayName } }
  }
`);
export type UserData = DocumentType<typeof UserFields>;
export type MessageData = DocumentType<typeof MessageFields>;
export type ConversationData = DocumentType<typeof ConversationFields>;

const TYPES: Record<ConversationKind, string> = { DIRECT: 'private', GROUP: 'group', PUBLIC: 'public' };
export const KINDS: Record<string, ConversationKind> = { private: 'DIRECT', group: 'GROUP', public: 'PUBLIC' };

/** The seed's Flask app serves a stock picture for users without one. */
const DEFAULT_PICTURE = 'default.jpg';

type Named = Pick<UserData, 'username' | 'displayName'>;

const nameOf = (user: Named) => user.displayName ?? user.username;

/** A user where chattrix shows one: participants, senders, typing and presence events. */
export function userJson(user: Pick<UserData, 'id' | 'username' | 'displayName' | 'avatarUrl'>) {
  return { id: num(user.id), username: user.username, display_name: nameOf(user), profile_pic: user.avatarUrl ?? DEFAULT_PICTURE };
}

/** A user in the directory (GET /api/users). */
export function listedUserJson(user: UserData) {
  return { ...userJson(user), is_online: user.isOnline, last_seen: user.lastSeenAt };
}

/** A message of history and of the socket's message events; file_* come from its first attachment. */
export function messageJson(m: MessageData) {
  const file = m.attachments?.[0];
  return {
    id: num(m.id),
    conversation_id: num(m.conversationId),
    sender_id: num(m.sender?.id),
    sender: m.sender ? userJson(m.sender) : null,
    content: m.content,
    type: seedKind(m.kind),
    timestamp: m.createdAt,
    edited: m.isEdited,
    edited_at: m.editedAt,
    file_url: file?.url ?? null,
    file_name: file?.name ?? null,
    file_size: file?.size ?? null,
  };
}

/** The `message_data` of a send: the message without its sender object and edit state. */
export function sentMessageJson(m: MessageData) {
  const { sender: _sender, edited: _edited, edited_at: _editedAt, ...sent } = messageJson(m);
  return sent;
}

/** A conversation of the list and of `conversation_updated`, as the viewer sees it. */
export function conversationJson(c: ConversationData) {
  const last = c.lastMessage;
  return {
    id: num(c.id),
    type: TYPES[c.kind],
    participants: c.participants.map(userJson),
    last_message: last
      ? {
          id: num(last.id),
          content: last.content,
          sender_id: num(last.sender?.id),
          sender_name: last.sender ? nameOf(last.sender) : null,
          timestamp: last.createdAt,
          type: seedKind(last.kind),
        }
      : null,
    unread_count: c.unreadCount,
    updated_at: c.updatedAt,
  };
}

/** A conversation just created. */
export function createdConversationJson(c: Pick<ConversationData, 'id' | 'kind' | 'createdAt' | 'participants'>) {
  return {
    id: num(c.id),
    type: TYPES[c.kind],
    participants: c.participants.map((u) => ({ id: num(u.id), username: u.username, display_name: nameOf(u) })),
    created_at: c.createdAt,
  };
}

/** The seed's limit on uploads, and the one sentence it answers a larger file with. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
const FILE_TOO_LARGE = 'File too large. Maximum size is 16MB.';

/** Our input names where the seed's differ by more than their case. */
const FIELD_NAMES: Record<string, string> = { identifier: 'username', title: 'name', attachmentIds: 'file' };

function fieldName(name: string): string {
  return FIELD_NAMES[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Status and body of a failure: `{success: false, message, errors?, code}`. */
export function errorJson(err: GatewayError): { status: number; body: Data } {
  const status = seedStatus(err.code, { CSRF_FAILED: 403 });
  const seed = renameFields(err, fieldName);
  const fields = Object.entries(seed.fields);
  const errors = Object.fromEntries(fields.map(([name, message]) => [name, [message]]));
  let message = seed.message;
  if (status === 500) message = 'Internal server error';
  else if (err.code === 'PAYLOAD_TOO_LARGE' && err.extensions.limit === MAX_FILE_BYTES) message = FILE_TOO_LARGE;
  return { status, body: { success: false, message, ...(fields.length ? { errors } : {}), code: status === 500 ? 'INTERNAL_SERVER_ERROR' : err.code } };
}
