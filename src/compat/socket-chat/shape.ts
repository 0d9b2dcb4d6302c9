import { GatewayError } from '../../gateway/gateway.ts';
import { graphql, type DocumentType } from '../../generated/compat/index.ts';
import { renameFields } from '../errors.ts';
import { seedKind, type Run } from '../shared.ts';

/**
 * socket-chat (seed 004) knows people by email. Accounts made through its login publish their
 * email; others keep it private, and their username stands in its place (a `to_email` may be
 * either, so a reply still reaches them).
 */
export const UserFields = graphql(`
  fragment SocketChatUser on User { id username email displayName avatarUrl isOnline lastSeenAt }
`);
export const MessageFields = graphql(`
  fragment SocketChatMessage on Message { id conversationId content kind isEdited createdAt replyTo { id } sender { ...SocketChatUser } }
`);
export type UserData = DocumentType<typeof UserFields>;
export type MessageData = DocumentType<typeof MessageFields>;

export function handle(user: Pick<UserData, 'email' | 'username'> | null | undefined): string | null {
  return user ? (user.email ?? user.username) : null;
}

export function userJson(user: UserData) {
  return { email: handle(user), name: user.displayName ?? user.username, profile_image: user.avatarUrl ?? null };
}

/** A message as socket-chat sends it; `withEdited` for history, whose entries also say `edited`. */
export function messageJson(m: MessageData, withEdited = false) {
  return {
    id: m.id,
    conversation_id: m.conversationId,
    sender_email: handle(m.sender),
    sender_name: m.sender ? (m.sender.displayName ?? m.sender.username) : null,
    message: m.content,
    timestamp: m.createdAt,
    message_type: seedKind(m.kind),
    ...(withEdited ? { edited: m.isEdited } : {}),
    reply_to: m.replyTo?.id ?? null,
  };
}

/** The user a `to_email` names: by email, or by username for accounts with a private email. */
const FIND_USER = graphql(`
  query SocketChatFindUser($email: String, $username: String) {
    user(email: $email, username: $username) { id }
  }
`);

export async function recipientId(run: Run, toEmail: string | null): Promise<string> {
  const value = toEmail?.trim() ?? '';
  if (!value) throw GatewayError.badField('to_email', 'is required');
  const data = await run(FIND_USER, value.includes('@') ? { email: value } : { username: value });
  const user = data.user;
  if (!user) throw new GatewayError('NOT_FOUND', 'User not found');
  return user.id;
}

/** Our input names as socket-chat's clients know them, for error messages. */
const SEED_FIELDS: Record<string, string> = {
  content: 'message',
  kind: 'message_type',
  replyToId: 'reply_to',
  recipientId: 'to_email',
  userId: 'to_email',
  conversationId: 'conversation_id',
  avatarUrl: 'profile_image',
  displayName: 'name',
};

/** The message of an error as socket-chat shows it (`detail`, or the socket `error`'s `message`). */
export function detail(err: GatewayError): string {
  if (err.code === 'INTERNAL_SERVER_ERROR') return 'Internal server error';
  // Any error that names a field says which, not only refused input.
  const [field, problem] = Object.entries(renameFields(err, SEED_FIELDS).fields)[0] ?? [];
  return field ? `${field}: ${problem}` : err.message;
}
