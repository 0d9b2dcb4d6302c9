import { parseDatabaseId } from '../lib/ids.ts';
import { GatewayError, type Data } from '../gateway/gateway.ts';
import type { DialectSession } from '../realtime/session.ts';

/**
 * Pieces more than one dialect needs: message kinds as the seeds spell them, numeric ids,
 * and the presence of a socket user's contacts.
 */

const KINDS = ['text', 'image', 'file', 'audio', 'video', 'system'] as const;

/** A seed's lower-case message type as our MessageKind; BAD_USER_INPUT names `field` otherwise. */
export function messageKind(type: unknown, field: string): string {
  if (type == null || type === '') return 'TEXT';
  const lower = String(type).toLowerCase();
  if (!(KINDS as readonly string[]).includes(lower)) {
    throw GatewayError.badField(field, `must be one of ${KINDS.join(', ')}`);
  }
  return lower.toUpperCase();
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

/** The users the socket's user shares a conversation with (for online/offline events). */
export async function contacts(session: DialectSession, userFields = ''): Promise<Data[]> {
  const data = await session.run(
    `query DialectContacts { me { id } conversations(first: 100) { edges { node { participants { id ${userFields} } } } } }`,
  );
  const byId = new Map<string, Data>();
  for (const edge of data.conversations.edges) for (const p of edge.node.participants) byId.set(p.id, p);
  byId.delete(data.me.id);
  return [...byId.values()];
}

/**
 * Follows the presence of the socket user's contacts. The subscription first reports each
 * contact's current state: those already online are announced, the offline ones are not news.
 */
export async function followContactsPresence(session: DialectSession, userFields: string, onChange: (user: Data, isOnline: boolean) => void) {
  const ids = (await contacts(session)).map((u) => u.id);
  if (ids.length === 0) return;
  const seen = new Set<string>();
  await session.follow(
    'presence',
    `subscription DialectPresence($ids: [ID!]!) { presence(userIds: $ids) { isOnline lastSeenAt user { id ${userFields} } } }`,
    { ids },
    ({ presence }) => {
      const first = !seen.has(presence.user.id);
      seen.add(presence.user.id);
      if (first && !presence.isOnline) return;
      onChange({ ...presence.user, lastSeenAt: presence.lastSeenAt }, presence.isOnline);
    },
  );
}

/** An integer query parameter from `min` to `max`, `fallback` when absent; BAD_USER_INPUT names it otherwise. */
export function intQuery(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw == null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw GatewayError.badField(name, `must be an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * The newest `wanted` messages of a conversation, oldest first. History is paged back from
 * the newest by id, since one page of `messages` holds at most 200.
 */
export async function newestMessages(run: Run, conversationId: string, wanted: number, messageFields: string): Promise<Data[]> {
  const collected: Data[] = [];
  let before: string | null = null;
  while (collected.length < wanted) {
    const data = await run(
      `query DialectHistory($id: ID!, $last: Int!, $before: String) {
        messages(conversationId: $id, last: $last, before: $before) { pageInfo { hasPreviousPage startCursor } edges { node { ${messageFields} } } }
      }`,
      { id: conversationId, last: Math.min(200, wanted - collected.length), before },
    );
    const page = data.messages;
    collected.unshift(...page.edges.map((e: Data) => e.node));
    if (!page.pageInfo.hasPreviousPage || !page.edges.length) break;
    before = page.pageInfo.startCursor;
  }
  return collected;
}

/** Runs a GraphQL document as someone (a route's or a socket's caller). */
export type Run = (document: string, variables?: Record<string, unknown>) => Promise<Data>;
