import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { GatewayError, type VariablesArg } from '../gateway/gateway.ts';
import type { Run } from './shared.ts';

/**
 * Paging as the seeds ask for it (a count and an offset in the query string) read from our
 * Relay connections, which give a page at a time by cursor: the parameters in, the
 * connection's arguments out, and its nodes back.
 */

/** The largest page a dialect asks a connection for, unless it says otherwise. */
const PAGE = 100;

/** An integer query parameter of at least `min` (and at most `max`), `fallback` when absent; BAD_USER_INPUT names it otherwise. */
export function intQuery(query: URLSearchParams, name: string, fallback: number, min: number, max?: number): number {
  const raw = query.get(name);
  if (raw == null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    throw GatewayError.badField(name, max === undefined ? `must be an integer of at least ${min}` : `must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** A connection as a dialect reads it: the page info of the direction its document reads in. */
export interface Connection<N> {
  totalCount?: number;
  pageInfo: { hasNextPage?: boolean; endCursor?: string | null; hasPreviousPage?: boolean; startCursor?: string | null };
  edges: Array<{ node: N }>;
}

/** The arguments `collect` gives a connection, so the caller gives the others. */
type PagingArgs = 'first' | 'after' | 'last' | 'before';

export interface Reading<D, N> {
  /** The connection in the document's data. */
  connection(data: D): Connection<N>;
  /** `forward` reads from the start (`first`/`after`), `backward` from the end (`last`/`before`). */
  direction: 'forward' | 'backward';
  /** How many nodes are wanted after the skipped ones. */
  count: number;
  /** How many nodes to pass over first, in reading order (so backward, the newest). Default 0. */
  skip?: number;
  /** The largest page asked for at once (the connection's own bound). Default 100. */
  page?: number;
}

/**
 * Nodes `skip` to `skip + count` of a connection, in the connection's order, read a page at a
 * time. A connection with a totalCount says on its first page how many there are, so nothing
 * is read past the end: a `skip` beyond it costs that one query.
 */
export async function collect<D, V, N>(
  run: Run,
  document: TypedDocumentNode<D, V>,
  variables: Omit<V, PagingArgs>,
  { connection, direction, count, skip = 0, page = PAGE }: Reading<D, N>,
): Promise<{ nodes: N[]; totalCount?: number }> {
  const forward = direction === 'forward';
  const nodes: N[] = [];
  let wanted = skip + count;
  let cursor: string | null = null;
  let totalCount: number | undefined;
  while (nodes.length < wanted) {
    const size = Math.min(page, wanted - nodes.length);
    const args = forward ? { first: size, after: cursor } : { last: size, before: cursor };
    const found = connection(await run(document, ...([{ ...variables, ...args }] as VariablesArg<V>)));
    totalCount = found.totalCount;
    if (totalCount != null) wanted = Math.min(wanted, totalCount);
    const read = found.edges.map((e) => e.node);
    if (forward) nodes.push(...read);
    else nodes.unshift(...read);
    const more = forward ? found.pageInfo.hasNextPage : found.pageInfo.hasPreviousPage;
    if (skip >= wanted || !more || read.length === 0) break;
    cursor = (forward ? found.pageInfo.endCursor : found.pageInfo.startCursor) ?? null;
  }
  const kept = forward ? nodes.slice(skip) : nodes.slice(0, Math.max(0, nodes.length - skip));
  return { nodes: kept, totalCount };
}

/** What a history document's variables are: the conversation, and the page `collect` asks for. */
interface HistoryArgs {
  id: string;
  last: number;
  before?: string | null;
}

/**
 * The newest messages of a conversation, oldest first, after passing over the newest `skip`:
 * `document` reads `messages(conversationId: $id, last: $last, before: $before)` with the
 * dialect's message fields. One page of `messages` holds at most 200.
 */
export async function newestMessages<M>(
  run: Run,
  document: TypedDocumentNode<{ messages: Connection<M> }, HistoryArgs>,
  conversationId: string,
  count: number,
  skip = 0,
): Promise<M[]> {
  const reading = { connection: (data: { messages: Connection<M> }) => data.messages, direction: 'backward', count, skip, page: 200 } as const;
  const { nodes } = await collect(run, document, { id: conversationId }, reading);
  return nodes;
}
