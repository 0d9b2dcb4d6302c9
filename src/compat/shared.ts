import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parseDatabaseId } from '../lib/ids.ts';
import { GatewayError, type Data, type VariablesArg } from '../gateway/gateway.ts';
import type { DialectSession } from '../realtime/session.ts';
import { graphql } from '../generated/compat/index.ts';
import type { MessageKind } from '../generated/compat/graphql.ts';

/**
 * Pieces more than one dialect needs: message kinds as the seeds spell them, numeric ids,
 * and the presence of a socket user's contacts.
 */

const KINDS = ['text', 'image', 'file', 'audio', 'video', 'system'] as const;

/** A seed's lower-case message type as our MessageKind; BAD_USER_INPUT names `field` otherwise. */
export function messageKind(type: unknown, field: string): MessageKind {
  if (type == null || type === '') return 'TEXT';
  const lower = String(type).toLowerCase();
  if (!(KINDS as readonly string[]).includes(lower)) {
    throw GatewayError.badField(field, `must be one of ${KINDS.join(', ')}`);
  }
  return lower.toUpperCase() as MessageKind;
}

/** Our MessageKind as the seeds spell it. */
export function seedKind(kind: string): string {
  return kind.toLowerCase();
}

/** Seeds that show ids as numbers get numbers (our ids are numeric strings in GraphQL). */
export function num(id: string | null | undefined): number | null {
  return id == null ? null : Number(id);
}

/**
 * A text field of a request body: a string, or a number (loose clients send ids and such as
 * numbers). Objects, arrays and booleans are refused naming the field rather than turned
 * into "[object Object]". Null when absent or empty, unless `mustHave`.
 */
export function textField(body: Data, field: string, mustHave: true): string;
export function textField(body: Data, field: string, mustHave?: boolean): string | null;
export function textField(body: Data, field: string, mustHave = false): string | null {
  const value = body[field];
  if (value == null || value === '') {
    if (mustHave) throw GatewayError.badField(field, 'is required');
    return null;
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw GatewayError.badField(field, 'must be a string');
  }
  return String(value);
}

/** A required field of a request body, or BAD_USER_INPUT naming it. */
export function required(body: Data, field: string): unknown {
  const value = body[field];
  if (value == null || value === '') throw GatewayError.badField(field, 'is required');
  return value;
}

/**
 * A path or body id (a string of digits, or a number) naming one of our rows; NOT_FOUND
 * otherwise, since no such thing exists ("abc", "1e3", -1 and 2³¹ name nothing).
 */
export function idParam(value: unknown, what: string): string {
  const id = parseDatabaseId(typeof value === 'number' ? value : String(value ?? ''));
  if (id === null) throw new GatewayError('NOT_FOUND', `${what} not found`);
  return String(id);
}

/** The `conversation_id` that chattrix's and socket-chat's socket events carry. */
export function conversationIdOf(data: Data): string {
  return idParam(data.conversation_id, 'Conversation');
}

/** Runs a GraphQL document as someone (a route's or a socket's caller): its typed data, or a GatewayError. */
export type Run = <R, V>(document: TypedDocumentNode<R, V>, ...variables: VariablesArg<V>) => Promise<R>;

/** What a dialect's contacts document selects: the socket's user, and who is in their conversations. */
interface ContactsData<U> {
  me: { id: string } | null;
  conversations: { edges: Array<{ node: { participants: U[] } }> };
}

const CONTACT_IDS = graphql(`
  query DialectContactIds { me { id } conversations(first: 100) { edges { node { participants { id } } } } }
`);

/**
 * The users the socket's user shares a conversation with (for online/offline events), with
 * the fields `document` selects of them (the dialect's own user fields).
 */
export async function contacts<U extends { id: string }>(
  session: DialectSession,
  document: TypedDocumentNode<ContactsData<U>, { [key: string]: never }>,
): Promise<U[]> {
  const data = await session.run(document);
  const byId = new Map<string, U>();
  for (const edge of data.conversations.edges) for (const p of edge.node.participants) byId.set(p.id, p);
  if (data.me) byId.delete(data.me.id);
  return [...byId.values()];
}

/** What a dialect's presence subscription selects: `presence(userIds: $ids)`, the user with its own fields. */
interface PresenceData<U> {
  presence: { isOnline: boolean; lastSeenAt: string | null; user: U };
}

/**
 * Follows the presence of the socket user's contacts. The subscription first reports each
 * contact's current state: those already online are announced, the offline ones are not news.
 */
export async function followContactsPresence<U extends { id: string }>(
  session: DialectSession,
  document: TypedDocumentNode<PresenceData<U>, { ids: string[] | string }>,
  onChange: (user: U & { lastSeenAt: string | null }, isOnline: boolean) => void,
) {
  const ids = (await contacts(session, CONTACT_IDS)).map((u) => u.id);
  if (ids.length === 0) return;
  const seen = new Set<string>();
  await session.follow('presence', document, { ids }, ({ presence }) => {
    const first = !seen.has(presence.user.id);
    seen.add(presence.user.id);
    if (first && !presence.isOnline) return;
    onChange({ ...presence.user, lastSeenAt: presence.lastSeenAt }, presence.isOnline);
  });
}
