import { print } from 'graphql';
import type { ResultOf, TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { graphql } from '../generated/index.ts';
import type { GqlResult, SignedUp } from '../helpers/clients.ts';
import type { Cluster, Instance } from './instances.ts';

// The drivers of the fault suite: senders that retry a failed send with the same clientId
// until it is stored, and live subscribers that reconnect and catch up the way an app does.
// Selections are lean on purpose: only fields read from the event itself, so what a
// subscriber receives depends on delivery, not on a database read per event.

const FaultSend = graphql(`
  mutation FaultSend($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
      seq
      clientId
    }
  }
`);

const FaultHistory = graphql(`
  query FaultHistory($conversationId: ID!, $after: String) {
    messages(conversationId: $conversationId, first: 200, after: $after) {
      edges {
        node {
          id
          seq
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const FaultEvents = graphql(`
  subscription FaultEvents($conversationId: ID!) {
    conversationEvents(conversationId: $conversationId) {
      __typename
      ... on MessageAddedEvent {
        message {
          id
          seq
          clientId
        }
      }
    }
  }
`);

/** mulberry32: a small seeded generator, so a run's order and timing repeat with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Counts by key, for error codes and close codes. */
export class Tally extends Map<string, number> {
  add(key: string): void {
    this.set(key, (this.get(key) ?? 0) + 1);
  }
  merge(other: Map<string, number>): this {
    for (const [key, n] of other) this.set(key, (this.get(key) ?? 0) + n);
    return this;
  }
}

/**
 * What one HTTP operation came to: its data, or why not. `code` is the answer's
 * `extensions.code`; a transport failure (instance gone, connection reset) or our own time
 * limit is a `transport` failure instead, not an answer of the server.
 */
type Outcome<T> = { data: T } | { code: string; message: string } | { transport: string };

/** POSTs one operation, giving up after `ms` (so a hung request cannot hold a scenario). */
export async function post<TResult, TVariables>(
  instance: Instance,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  token: string,
  ms: number,
): Promise<Outcome<TResult>> {
  let res: Response;
  try {
    res = await fetch(`${instance.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: print(document), variables }),
      signal: AbortSignal.timeout(ms),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { transport: e.name === 'TimeoutError' ? 'TIMEOUT' : (e.cause?.code ?? e.name) };
  }
  let body: GqlResult<TResult>;
  try {
    body = (await res.json()) as GqlResult<TResult>;
  } catch (err) {
    // The status line came but the body did not (the instance died while answering).
    return { transport: res.ok ? `BODY_${(err as Error).name}` : `HTTP_${res.status}` };
  }
  if (body.errors?.length || !body.data) {
    const [first] = body.errors ?? [];
    return { code: String(first?.extensions?.code ?? `HTTP_${res.status}`), message: first?.message ?? '' };
  }
  return { data: body.data };
}

export interface Acked {
  id: number;
  seq: number;
  attempts: number;
  /** From the first attempt to the acknowledgement, retries and backoff included. */
  ms: number;
}

/**
 * One user sending a steady stream into one conversation. Each message has its own clientId;
 * a send that fails is sent again with the same clientId (to the other instance, after a
 * backoff) until the server stores and acknowledges it.
 */
export class Sender {
  readonly acked = new Map<string, Acked>();
  /** `extensions.code` of every send the server answered with an error (INTERNAL_SERVER_ERROR: the message too). */
  readonly codes = new Tally();
  /** Sends that got no answer: refused or reset connections, our time limit. */
  readonly transport = new Tally();
  /** Sends still unacknowledged after 15 s of retrying: each is a failure of the scenario. */
  readonly gaveUp: string[] = [];
  private stopped = false;

  constructor(
    readonly index: number,
    readonly user: SignedUp,
    private readonly conversationId: string,
    private readonly cluster: Cluster,
    private readonly random: () => number,
  ) {}

  /** Sends until `stop()`; resolves once the last message started is acknowledged (or given up). */
  async run(): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      // The pace of a chatty user: 40 to 160 ms between sends.
      await delay(40 + this.random() * 120);
      if (this.stopped) break;
      await this.sendUntilStored(n);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async sendUntilStored(n: number): Promise<void> {
    // Unique per conversation too: a clientId is its sender's for good, and sending it again
    // in the next scenario would get the earlier scenario's message back.
    const clientId = `c${this.conversationId}-s${this.index}-${n}`;
    const content = `message ${n} from sender ${this.index}`;
    const started = Date.now();
    // Past the longest outage here (5 s) with room to spare, and within the scenario's bound.
    const giveUpAt = started + 15_000;
    for (let attempt = 0; ; attempt++) {
      // Alternate instances per message and per retry: a retry lands on the other instance.
      const instance = this.cluster.pick(this.index + n + attempt);
      const outcome = await post(instance, FaultSend, { input: { conversationId: this.conversationId, content, clientId } }, this.user.accessToken, 10_000);
      if ('data' in outcome) {
        const { id, seq } = outcome.data.sendMessage;
        this.acked.set(clientId, { id: Number(id), seq, attempts: attempt + 1, ms: Date.now() - started });
        return;
      }
      if ('code' in outcome) this.codes.add(outcome.code === 'INTERNAL_SERVER_ERROR' ? `${outcome.code} "${outcome.message}"` : outcome.code);
      else this.transport.add(outcome.transport);
      if (Date.now() > giveUpAt) {
        this.gaveUp.push(clientId);
        return;
      }
      // 50 ms doubling to 800 ms, with seeded jitter so senders do not retry in step.
      await delay(Math.min(800, 50 * 2 ** attempt) * (0.5 + this.random()));
    }
  }
}

/**
 * A live subscriber to `conversationEvents` as an app keeps one: one graphql-ws socket at a
 * time, on its home instance while that runs. Whenever its subscription ends (socket dropped,
 * instance gone, subscription failed), it opens a new one (on the other instance if its own
 * does not answer) and catches up by asking `messages(after: <last id it holds>)`, merging
 * without duplicates (ids and seqs rise together in commit order).
 *
 * It keeps two views: `held` (everything it has, live or caught up: compared with the
 * database for losses) and the live arrivals (checked for duplicates and order).
 */
export class Subscriber {
  /** message id → seq, everything it holds. */
  readonly held = new Map<number, number>();
  /** Live events that repeated a message already received live. */
  liveDuplicates = 0;
  /** Live events whose seq was not above every seq received live before. */
  misordered = 0;
  live = 0;
  /** Messages it got only by catching up after a new socket. */
  caughtUp = 0;
  sessions = 0;
  /** Why each socket or subscription ended: close codes, error codes. */
  readonly endings = new Tally();
  /** Codes of catch-up queries that failed (retried). */
  readonly catchUpFailures = new Tally();

  private readonly liveIds = new Set<number>();
  private maxLiveSeq = 0;
  private client: Client | undefined;
  private stopped = false;
  private catchingUp: Promise<void> | undefined;
  private catchUpAgain = false;
  /** Consecutive sessions that ended before connecting: backs off the next attempt. */
  private failures = 0;
  private onReady: (() => void) | undefined;
  private readonly ready: Promise<void>;
  /** The instance of the current session. */
  instance: Instance | undefined;

  constructor(
    readonly name: string,
    private readonly user: SignedUp,
    private readonly conversationId: string,
    private readonly cluster: Cluster,
    private readonly home: number,
  ) {
    this.ready = new Promise((resolve) => (this.onReady = resolve));
  }

  /** Opens the first session; resolves once it is connected and has caught up. */
  start(): Promise<void> {
    this.open(0);
    return this.ready;
  }

  /** Closes its socket; it opens no other. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.dispose();
    await this.catchingUp;
  }

  maxHeldSeq(): number {
    return Math.max(0, ...this.held.values());
  }

  private open(attempt: number): void {
    if (this.stopped) return;
    const candidates = this.cluster.preferring(this.home);
    if (candidates.length === 0) {
      setTimeout(() => this.open(attempt + 1), 200);
      return;
    }
    // Its home first; after a failure to connect, the next one.
    const instance = candidates[attempt % candidates.length];
    this.instance = instance;
    this.sessions++;
    let connected = false;
    let firstLive = true;
    let closeCode: number | undefined;
    const client = createClient({
      url: instance.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${this.user.accessToken}` },
      on: {
        connected: () => {
          connected = true;
          this.failures = 0;
          // Whatever was stored while it had no subscription comes from history.
          void this.catchUp().then(() => this.onReady?.());
        },
        closed: (event) => {
          closeCode = (event as { code?: number }).code;
        },
      },
    });
    this.client = client;
    const ended = (why: string) => {
      if (this.stopped || this.client !== client) return;
      this.endings.add(why);
      void client.dispose();
      if (!connected) this.failures++;
      const wait = connected ? 0 : Math.min(1000, 50 * 2 ** this.failures);
      setTimeout(() => this.open(connected ? 0 : attempt + 1), wait);
    };
    client.subscribe<ResultOf<typeof FaultEvents>>(
      { query: print(FaultEvents), variables: { conversationId: this.conversationId } },
      {
        next: (result) => {
          if (result.errors?.length) {
            // An event the server could not resolve: its message did not arrive (a loss, unless history brings it).
            this.endings.add(`event error ${String(result.errors[0].extensions?.code)}`);
            return;
          }
          const event = result.data?.conversationEvents;
          if (event?.__typename !== 'MessageAddedEvent') return;
          const isFirst = firstLive;
          firstLive = false;
          this.receive(Number(event.message.id), event.message.seq, isFirst);
        },
        error: (err) => {
          const code = (err as { code?: number }).code ?? closeCode;
          const graphqlCode = Array.isArray(err) ? String((err[0] as { extensions?: { code?: string } })?.extensions?.code) : undefined;
          ended(graphqlCode ? `subscription error ${graphqlCode}` : `socket closed ${code ?? (err as Error)?.message ?? 'unknown'}`);
        },
        complete: () => ended('subscription completed'),
      },
    );
  }

  private receive(id: number, seq: number, firstOfSession: boolean): void {
    this.live++;
    if (this.liveIds.has(id)) this.liveDuplicates++;
    else if (seq <= this.maxLiveSeq) this.misordered++;
    this.liveIds.add(id);
    this.maxLiveSeq = Math.max(this.maxLiveSeq, seq);
    // A new subscription starts where the conversation was when the server set it up, which
    // may be after the catch-up read that raced with it: a first event past a hole means
    // history must be read again. (Later holes are the server's to fill, and count as losses.)
    if (firstOfSession && seq > this.maxHeldSeq() + 1) void this.catchUp();
    this.held.set(id, seq);
  }

  /** Reads history after the last message held until no page is left; one read at a time. */
  catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return this.catchingUp;
    }
    this.catchingUp = (async () => {
      do {
        this.catchUpAgain = false;
        await this.readHistory();
      } while (this.catchUpAgain && !this.stopped);
    })().finally(() => (this.catchingUp = undefined));
    return this.catchingUp;
  }

  private async readHistory(): Promise<void> {
    for (let attempt = 0; !this.stopped; ) {
      const after = String(Math.max(0, ...this.held.keys()));
      const instance = this.instance?.alive ? this.instance : this.cluster.pick(attempt);
      const outcome = await post(instance, FaultHistory, { conversationId: this.conversationId, after }, this.user.accessToken, 5_000);
      if (!('data' in outcome)) {
        this.catchUpFailures.add('code' in outcome ? outcome.code : outcome.transport);
        await delay(Math.min(800, 50 * 2 ** attempt++));
        continue;
      }
      const { edges, pageInfo } = outcome.data.messages;
      for (const { node } of edges) {
        const id = Number(node.id);
        if (this.held.has(id)) continue;
        this.held.set(id, node.seq);
        this.caughtUp++;
      }
      if (!pageInfo.hasNextPage) return;
    }
  }
}
