import { createGraphiQLFetcher, type CreateFetcherOptions, type FetcherOpts, type FetcherReturnType } from '@graphiql/toolkit';
import { SubscriptionProtocol, UrlLoader, type LoadFromUrlOptions } from '@graphql-tools/url-loader';
import { Kind, parse, specifiedRules, validate, type DocumentNode, type ExecutionResult, type OperationDefinitionNode } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { graphql } from './generated/index.ts';
import { directBetween, listening, send } from './helpers/chat.ts';
import { gql, nextEvent, signUp, type SignedUp } from './helpers/clients.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { GRAPHIQL_DEFAULT_DOCUMENT, graphiqlOptions } from '../src/graphql/graphiql.ts';
import { schema } from '../src/graphql/schema.ts';
import { topics } from '../src/lib/events.ts';

const IsOnline = graphql(`
  query GraphiQLUserOnline($id: ID!) {
    user(id: $id) {
      isOnline
    }
  }
`);

interface Run {
  document: string;
  operationName: string;
  variables?: Record<string, unknown>;
  /** The Headers tab. */
  headers?: Record<string, string>;
}
type Result = ExecutionResult<any>;

/**
 * What GraphiQL's page does when Run is pressed, as Yoga's GraphiQL builds it
 * (YogaGraphiQL.tsx in @graphql-yoga/graphiql): one url-loader executor made with the page's
 * options (ours, as /graphql serves them), called with the chosen operation and its fragments,
 * and the Headers tab as `extensions.headers`. Queries and mutations go over HTTP with those
 * headers; subscriptions over graphql-ws, with them in the `subscribe` message. (The page
 * bundles @graphql-tools/url-loader; here it is the copy @graphql-codegen/cli brings.)
 */
function graphiqlFetcher(endpoint: string) {
  const executor = new UrlLoader().getExecutorAsync(endpoint, {
    subscriptionsProtocol: SubscriptionProtocol.GRAPHQL_SSE,
    subscriptionsEndpoint: endpoint,
    credentials: 'same-origin',
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    inputValueDeprecation: true,
    ...(graphiqlOptions as Partial<LoadFromUrlOptions>),
    headers: {},
  });
  /** The results of one run: one for a query or mutation, each event for a subscription. */
  return async function* run({ document, operationName, variables, headers = {} }: Run): AsyncGenerator<Result> {
    const only: DocumentNode = {
      kind: Kind.DOCUMENT,
      definitions: parse(document).definitions.filter((d) => d.kind !== Kind.OPERATION_DEFINITION || d.name?.value === operationName),
    };
    const result = await executor({ document: only as never, operationName, variables, extensions: { headers } });
    if (Symbol.asyncIterator in (result as object)) yield* result as AsyncIterable<Result>;
    else yield result as Result;
  };
}

let server: TestServer;
let graphiql: ReturnType<typeof graphiqlFetcher>;
beforeAll(async () => {
  server = await startServer();
  graphiql = graphiqlFetcher(`${server.url}/graphql`);
});
afterAll(() => server?.stop());

const bearer = (user: SignedUp) => ({ Authorization: `Bearer ${user.accessToken}` });

/** The one result of a query or mutation run from GraphiQL. */
const runOnce = (run: Run) => nextEvent(graphiql(run), `${run.operationName} result`);

/** Resolves once a subscription listens; fails at once with its answer if that comes first. */
function started(live: Promise<void>, first: Promise<Result>): Promise<void> {
  const early = first.then((answer) => {
    throw new Error(`the subscription answered before it listened: ${JSON.stringify(answer)}`);
  });
  return Promise.race([live, early]);
}

const NewMessages = `
  subscription NewMessages($id: ID!) {
    conversationEvents(conversationId: $id) {
      ... on MessageAddedEvent { message { content sender { id } } }
    }
  }`;

describe('subscriptions run from GraphiQL', () => {
  it('run as the user whose Authorization the Headers tab holds', async () => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const conversationId = await directBetween(server, alice, bob);
    const live = listening(server, topics.conversation(conversationId));
    const events = graphiql({ document: NewMessages, operationName: 'NewMessages', variables: { id: conversationId }, headers: bearer(alice) });
    const next = nextEvent(events, 'the message');
    await started(live, next);
    // The socket counts for Alice's presence, as any signed-in socket does.
    expect((await gql(server, IsOnline, { id: alice.id }, bob.accessToken)).data!.user!.isOnline).toBe(true);
    await send(server, bob, conversationId, 'hi from bob');
    expect(await next).toEqual({ data: { conversationEvents: { message: { content: 'hi from bob', sender: { id: bob.id } } } } });
    await events.return(undefined);
  });

  it('are refused as signed out without the header, and told why a token fails', async () => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const run = { document: NewMessages, operationName: 'NewMessages', variables: { id: await directBetween(server, alice, bob) } };
    const anonymous = await runOnce(run);
    expect(anonymous.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    // Refused before it starts, so graphql-ws answers with an `error` message: GraphiQL shows it.
    const invalid = await runOnce({ ...run, headers: { Authorization: 'Bearer not-a-token' } }).catch((err: unknown) => err);
    expect(invalid).toEqual([expect.objectContaining({ message: 'Access token invalid', extensions: { code: 'UNAUTHENTICATED' } })]);
  });

  it.each([
    ['as the payload itself', (auth: string) => ({ Authorization: auth })],
    ['under payload.headers', (auth: string) => ({ headers: { Authorization: auth } })],
    ['under payload.extensions.headers', (auth: string) => ({ extensions: { headers: { authorization: auth } } })],
  ])('sign the socket in when connection_init carries the Headers tab %s', async (_where, payload) => {
    const user = await signUp(server);
    const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: payload(`Bearer ${user.accessToken}`) });
    const result = await nextEvent(client.iterate<{ me: { id: string } | null }>({ query: '{ me { id } }' }), 'me');
    expect(result.data!.me).toEqual({ id: user.id });
    await client.dispose();
  });

  it("keep a socket to one session: an operation with another user's token is refused", async () => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${alice.accessToken}` } });
    const me = (headers: Record<string, string>) =>
      nextEvent(client.iterate<{ me: { id: string } | null }>({ query: '{ me { id } }', extensions: { headers } }), 'me').catch((err: unknown) => err);
    expect(await me(bearer(alice))).toEqual({ data: { me: { id: alice.id } } });
    expect(await me(bearer(bob))).toEqual([expect.objectContaining({ extensions: { code: 'UNAUTHENTICATED' }, message: expect.stringMatching(/another token/) })]);
    await client.dispose();
  });
});

/**
 * GraphiQL's own fetcher, as a page that embeds plain GraphiQL (not Yoga's) makes it: queries
 * over HTTP with its `headers`, subscriptions over graphql-ws at `subscriptionUrl`.
 */
describe("GraphiQL's own fetcher (@graphiql/toolkit)", () => {
  // With a subscriptionUrl it makes its graphql-ws client with the global WebSocket, which a
  // browser has and Node 20 has not: the ws package's stands in for it.
  beforeAll(() => {
    vi.stubGlobal('WebSocket', WebSocket);
  });
  afterAll(() => {
    vi.unstubAllGlobals();
  });

  /** Its options for `user`; `fetch` too, which it takes from `window` in a browser. */
  const options = (user: SignedUp, more: Partial<CreateFetcherOptions> = {}): CreateFetcherOptions => ({
    url: `${server.url}/graphql`,
    subscriptionUrl: server.wsUrl,
    headers: bearer(user),
    fetch,
    ...more,
  });

  /** The results of one run, one by one: it answers with one result or a stream of them. */
  async function results(returned: FetcherReturnType): Promise<AsyncIterator<Result>> {
    const value = await returned;
    if (Symbol.asyncIterator in value) return (value as AsyncIterable<Result>)[Symbol.asyncIterator]();
    if ('subscribe' in value) throw new Error('an Observable was not expected');
    return (async function* () {
      yield value as Result;
    })();
  }

  it('runs a query over HTTP as the user its headers name', async () => {
    const alice = await signUp(server);
    const fetcher = createGraphiQLFetcher(options(alice));
    const query = 'query Me { me { id username } }';
    // As GraphiQL calls it: the operation, then the parsed document and the Headers tab.
    const me = await nextEvent(await results(fetcher({ query, operationName: 'Me' }, { documentAST: parse(query), headers: {} })), 'Me');
    expect(me).toEqual({ data: { me: { id: alice.id, username: alice.username } } });
  });

  /** How a GraphiQL page signs its subscriptions in: its options, what it passes per run, what to close after. */
  type SignIn = (user: SignedUp) => { fetcher: CreateFetcherOptions; run: FetcherOpts; done?: () => Promise<void> };
  const signIns: Array<[string, SignIn]> = [
    ['by the Headers tab', (user) => ({ fetcher: options(user), run: { headers: bearer(user) } })],
    ['by wsConnectionParams', (user) => ({ fetcher: options(user, { wsConnectionParams: bearer(user) }), run: {} })],
    [
      'by the connectionParams of a graphql-ws client given as wsClient',
      (user) => {
        const wsClient = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: bearer(user) });
        return { fetcher: options(user, { subscriptionUrl: undefined, wsClient }), run: {}, done: () => wsClient.dispose() };
      },
    ],
  ];

  it.each(signIns)('runs a subscription over graphql-ws as the user it is signed in as %s, and receives what another sends', async (_how, signIn) => {
    const [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
    const conversationId = await directBetween(server, alice, bob);
    const { fetcher: fetcherOptions, run, done } = signIn(alice);
    const fetcher = createGraphiQLFetcher(fetcherOptions);
    const live = listening(server, topics.conversation(conversationId));
    const events = await results(fetcher({ query: NewMessages, operationName: 'NewMessages', variables: { id: conversationId } }, { documentAST: parse(NewMessages), ...run }));
    const next = nextEvent(events, 'the message');
    // Only a participant may subscribe: signed out, it would be refused instead.
    await started(live, next);
    await send(server, bob, conversationId, 'hi from bob');
    expect(await next).toEqual({ data: { conversationEvents: { message: { content: 'hi from bob', sender: { id: bob.id } } } } });
    await events.return?.();
    await done?.();
  });
});

describe("GraphiQL's default document", () => {
  const operations = parse(GRAPHIQL_DEFAULT_DOCUMENT).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

  it('signs in, queries and subscribes with valid operations, and says where the token goes', () => {
    expect(validate(schema, parse(GRAPHIQL_DEFAULT_DOCUMENT), specifiedRules)).toEqual([]);
    const rootFields = (kind: string) =>
      operations.filter((o) => o.operation === kind).flatMap((o) => o.selectionSet.selections.map((s) => (s.kind === Kind.FIELD ? s.name.value : '')));
    expect(rootFields('mutation')).toEqual(expect.arrayContaining(['register', 'login', 'sendMessage']));
    expect(rootFields('query')).toEqual(expect.arrayContaining(['me']));
    expect(rootFields('subscription')).toEqual(['conversationEvents']);
    expect(GRAPHIQL_DEFAULT_DOCUMENT).toMatch(/^#.*Headers tab/m);
    expect(GRAPHIQL_DEFAULT_DOCUMENT).toMatch(/^#.*"Authorization": "Bearer <accessToken>"/m);
  });

  it('works as its comments say, run from GraphiQL', async () => {
    // Step 1 with a username of one's own, as the comment asks.
    const document = GRAPHIQL_DEFAULT_DOCUMENT.replaceAll('"alice"', `"${uniqueName()}"`);
    const signedUp = await runOnce({ document, operationName: 'SignUp' });
    const { accessToken, user } = signedUp.data!.register;
    // Step 2: the token goes into the Headers tab.
    const headers = { Authorization: `Bearer ${accessToken}` };
    expect((await runOnce({ document, operationName: 'Me', headers })).data!.me).toMatchObject({ id: user.id });
    expect((await runOnce({ document, operationName: 'SignIn', headers })).data!.login.user).toEqual(user);
    expect((await runOnce({ document, operationName: 'MyConversations', headers })).errors).toBeUndefined();

    // Step 3: the room's id in place of 1 (it is 1 only on a new server), events in one tab...
    const roomId = (await runOnce({ document, operationName: 'GeneralRoom', headers })).data!.publicRoom.id as string;
    const inRoom = document.replaceAll('conversationId: "1"', `conversationId: "${roomId}"`);
    const live = listening(server, topics.conversation(roomId));
    const events = graphiql({ document: inRoom, operationName: 'RoomEvents', headers });
    const next = nextEvent(events, 'the hello');
    await started(live, next);
    // ...and SayHello from another.
    const hello = (await runOnce({ document: inRoom, operationName: 'SayHello', headers })).data!.sendMessage;
    expect(await next).toMatchObject({
      data: { conversationEvents: { __typename: 'MessageAddedEvent', message: { id: hello.id, content: 'Hello from GraphiQL', sender: { username: user.username } } } },
    });
    await events.return(undefined);
  });
});
