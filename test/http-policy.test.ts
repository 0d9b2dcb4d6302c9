import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, type GqlResult } from './helpers/clients.ts';
import { Register } from './helpers/operations.ts';
import { startServer, uniqueName, usingServices, type TestServer } from './helpers/server.ts';
import { PNG } from './helpers/upload.ts';

// One HTTP policy for every surface: the same CORS answer, request ids, security headers and
// forwarded-header rule on /graphql (JSON and multipart), dialect routes, file links, /health
// and 404s; and GraphQL operations counted by one rate limit over HTTP and graphql-ws.

const servers: TestServer[] = [];
async function server(env: Record<string, string> = {}): Promise<TestServer> {
  const started = await startServer(env);
  servers.push(started);
  return started;
}
afterAll(() => Promise.all(servers.map((s) => s.stop())));

/**
 * An address of this run's own (behind TRUST_PROXY, as a proxy would forward it): with Redis,
 * counts are shared with every other server and earlier runs.
 */
const randomAddress = () => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 250)).join('.')}`;

async function post(target: TestServer, query: string, { token, headers = {}, variables }: { token?: string; headers?: Record<string, string>; variables?: unknown } = {}) {
  return fetch(`${target.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

async function signUp(target: TestServer, headers: Record<string, string> = {}) {
  const result = await gql(target, Register, { input: { username: uniqueName('hp'), password: 'correct horse battery' } }, undefined, headers);
  if (!result.data) throw new Error(`sign-up failed: ${JSON.stringify(result.errors)}`);
  return { id: result.data.register.user.id, token: result.data.register.accessToken };
}

/** A GraphQL multipart upload (the form Apollo's upload link sends), with any headers. */
function upload(target: TestServer, query: string, token: string, headers: Record<string, string> = {}) {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables: { file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(PNG)], { type: 'image/png' }), 'dot.png');
  return fetch(`${target.url}/graphql`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}`, ...headers } });
}

const UPLOAD_FILE = 'mutation ($file: Upload!) { uploadFile(file: $file) { id url } }';
const UPLOAD_AVATAR = 'mutation ($file: Upload!) { uploadAvatar(file: $file) { avatarUrl } }';

/** The CORS part of an answer. */
const corsOf = (res: Response) => ({
  allowOrigin: res.headers.get('access-control-allow-origin'),
  credentials: res.headers.get('access-control-allow-credentials'),
  vary: res.headers.get('vary'),
});

describe.each([
  ['a list of origins', 'https://app.example', null],
  ['a list with *', 'https://app.example, *', '*'],
])('CORS with %s', (_name, origins, foreignOrigin) => {
  let target: TestServer;
  let user: { id: string; token: string };
  let fileLink: string;
  let avatarLink: string;
  beforeAll(async () => {
    target = await server({ CORS_ORIGINS: origins });
    user = await signUp(target);
    fileLink = ((await (await upload(target, UPLOAD_FILE, user.token)).json()) as GqlResult<{ uploadFile: { url: string } }>).data!.uploadFile.url;
    avatarLink = ((await (await upload(target, UPLOAD_AVATAR, user.token)).json()) as GqlResult<{ uploadAvatar: { avatarUrl: string } }>).data!.uploadAvatar.avatarUrl;
  });

  /** The same question asked of every surface, with this Origin. */
  const surfaces = (origin: string): Array<[string, () => Promise<Response>]> => [
    ['GraphQL', () => post(target, '{ me { id } }', { token: user.token, headers: { origin } })],
    ['multipart', () => upload(target, UPLOAD_FILE, user.token, { origin })],
    ['REST', () => fetch(`${target.url}/socket-chat/health`, { headers: { origin } })],
    ['REST error', () => fetch(`${target.url}/flask-chat/api/users/`, { headers: { origin } })],
    ['file link', () => fetch(fileLink, { headers: { origin } })],
    ['avatar link', () => fetch(avatarLink, { headers: { origin } })],
    ['/health', () => fetch(`${target.url}/health`, { headers: { origin } })],
    ['404', () => fetch(`${target.url}/nowhere`, { headers: { origin } })],
  ];

  it('gives an origin it lists by name credentials, on every surface', async () => {
    for (const [surface, ask] of surfaces('https://app.example')) {
      const res = await ask();
      expect({ surface, ...corsOf(res) }).toEqual({ surface, allowOrigin: 'https://app.example', credentials: 'true', vary: 'Origin' });
      expect(res.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id.*X-RateLimit-Limit.*Retry-After/);
      await res.arrayBuffer();
    }
  });

  it('gives a foreign origin the same answer on every surface', async () => {
    for (const [surface, ask] of surfaces('https://evil.example')) {
      const res = await ask();
      expect({ surface, ...corsOf(res) }).toEqual({ surface, allowOrigin: foreignOrigin, credentials: null, vary: 'Origin' });
      await res.arrayBuffer();
    }
  });

  it('answers preflights the same on every path', async () => {
    for (const path of ['/graphql', '/chattrix/api/conversations', new URL(fileLink).pathname, '/health']) {
      const preflight = (origin: string) =>
        fetch(`${target.url}${path}`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
        });
      const listed = await preflight('https://app.example');
      expect({ path, status: listed.status, ...corsOf(listed) }).toMatchObject({ path, status: 204, allowOrigin: 'https://app.example', credentials: 'true' });
      expect(listed.headers.get('access-control-allow-methods')).toContain('POST');
      expect(listed.headers.get('access-control-allow-headers')).toBe('content-type, authorization');
      const foreign = await preflight('https://evil.example');
      expect({ path, status: foreign.status, ...corsOf(foreign) }).toMatchObject({ path, status: 204, allowOrigin: foreignOrigin, credentials: null });
      expect(foreign.headers.get('access-control-allow-methods')).toEqual(foreignOrigin ? expect.stringContaining('POST') : null);
    }
  });

  it("gives Socket.IO's handshake the same decision", async () => {
    const handshake = (origin: string) => fetch(`${target.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    const listed = await handshake('https://app.example');
    expect(corsOf(listed)).toMatchObject({ allowOrigin: 'https://app.example', credentials: 'true' });
    await listed.text();
    const foreign = await handshake('https://evil.example');
    expect(corsOf(foreign)).toMatchObject({ allowOrigin: foreignOrigin, credentials: null });
    await foreign.text();
  });
});

describe('request ids and security headers', () => {
  let target: TestServer;
  let user: { id: string; token: string };
  beforeAll(async () => {
    target = await server();
    user = await signUp(target);
  });

  it('echoes the client’s own request id on every kind of answer', async () => {
    const id = { 'x-request-id': 'req-42.a:b/c' };
    const answers: Array<[string, () => Promise<Response>]> = [
      ['GraphQL', () => post(target, '{ me { id } }', { headers: id })],
      ['GraphQL refused', () => fetch(`${target.url}/graphql?query=${encodeURIComponent('mutation { logout }')}`, { headers: { accept: 'application/json', ...id } })],
      ['multipart', () => upload(target, UPLOAD_FILE, user.token, id)],
      ['multipart refused', () => upload(target, UPLOAD_FILE, 'forged', id)],
      ['REST', () => fetch(`${target.url}/socket-chat/health`, { headers: id })],
      ['REST error', () => fetch(`${target.url}/chattrix/api/conversations`, { headers: id })],
      ['404', () => fetch(`${target.url}/nowhere`, { headers: id })],
      ['/health', () => fetch(`${target.url}/health`, { headers: id })],
      ['/metrics', () => fetch(`${target.url}/metrics`, { headers: id })],
      ['Socket.IO polling', () => fetch(`${target.url}/socket.io/?EIO=4&transport=polling`, { headers: id })],
    ];
    for (const [surface, ask] of answers) {
      const res = await ask();
      expect({ surface, id: res.headers.get('x-request-id') }).toEqual({ surface, id: 'req-42.a:b/c' });
      await res.arrayBuffer();
    }
  });

  it('replaces an id that is too long or holds other characters with a new one', async () => {
    for (const id of ['x'.repeat(129), 'a"b', 'a<b>', 'a b']) {
      const res = await fetch(`${target.url}/health`, { headers: { 'x-request-id': id } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      await res.text();
    }
  });

  it('sends the security headers everywhere, and lets only files be framed', async () => {
    const file = ((await (await upload(target, UPLOAD_FILE, user.token)).json()) as GqlResult<{ uploadFile: { url: string } }>).data!.uploadFile.url;
    const pages: Array<[string, Promise<Response>]> = [
      ['GraphQL', post(target, '{ me { id } }')],
      ['REST', fetch(`${target.url}/socket-chat/health`)],
      ['404', fetch(`${target.url}/nowhere`)],
      ['/health', fetch(`${target.url}/health`)],
      ['file link', fetch(file)],
      ['Socket.IO polling', fetch(`${target.url}/socket.io/?EIO=4&transport=polling`)],
    ];
    for (const [surface, answer] of pages) {
      const res = await answer;
      const framed = surface === 'file link';
      expect({
        surface,
        nosniff: res.headers.get('x-content-type-options'),
        referrer: res.headers.get('referrer-policy'),
        frame: res.headers.get('x-frame-options'),
        csp: res.headers.get('content-security-policy'),
        // Plain http: a browser must not be told to insist on https.
        hsts: res.headers.get('strict-transport-security'),
      }).toEqual({
        surface,
        nosniff: 'nosniff',
        referrer: 'no-referrer',
        frame: framed ? null : 'DENY',
        csp: framed ? null : "default-src 'none'; frame-ancestors 'none'",
        hsts: null,
      });
      await res.arrayBuffer();
    }
    // GraphiQL's page runs an inline start-up script: it is only kept out of frames.
    const graphiql = await fetch(`${target.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await graphiql.text()).toMatch(/graphiql/i);
    expect(graphiql.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    expect(graphiql.headers.get('x-frame-options')).toBe('DENY');
  });
});

describe('forwarded headers', () => {
  const proxied = { 'x-forwarded-host': 'chat.example.com:8443', 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' };

  /** The links each surface builds for a request carrying `headers`: multipart, REST, GraphQL over HTTP. */
  async function links(target: TestServer, headers: Record<string, string>) {
    const user = await signUp(target);
    const other = await signUp(target);
    const uploaded = (await (await upload(target, UPLOAD_FILE, user.token, headers)).json()) as GqlResult<{ uploadFile: { id: string; url: string } }>;
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(PNG)], { type: 'image/png' }), 'dot.png');
    const rest = await fetch(`${target.url}/chattrix/api/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${user.token}`, ...headers } });
    const restLink = ((await rest.json()) as { file: { url: string } }).file.url;
    const conversation = (await (await post(target, 'mutation ($u: ID!) { ensureDirectConversation(userId: $u) { id } }', { token: user.token, variables: { u: other.id } })).json()) as GqlResult<{ ensureDirectConversation: { id: string } }>;
    const conversationId = conversation.data!.ensureDirectConversation.id;
    await post(target, 'mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }', {
      token: user.token,
      variables: { i: { conversationId, attachmentIds: [uploaded.data!.uploadFile.id] } },
    });
    const history = (await (
      await post(target, 'query ($c: ID!) { messages(conversationId: $c, first: 1) { edges { node { attachments { url } } } } }', { token: user.token, headers, variables: { c: conversationId } })
    ).json()) as GqlResult<{ messages: { edges: Array<{ node: { attachments: Array<{ url: string }> } }> } }>;
    const hsts = (await fetch(`${target.url}/health`, { headers })).headers.get('strict-transport-security');
    return { multipart: uploaded.data!.uploadFile.url, rest: restLink, graphql: history.data!.messages.edges[0].node.attachments[0].url, hsts };
  }

  it('ignores X-Forwarded-Host and -Proto without TRUST_PROXY', async () => {
    const target = await server();
    const seen = await links(target, proxied);
    for (const link of [seen.multipart, seen.rest, seen.graphql]) expect(link.startsWith(`${target.url}/files/`)).toBe(true);
    expect(seen.hsts).toBeNull();
  });

  it('builds links from them with TRUST_PROXY=true, and then sends HSTS over https', async () => {
    const target = await server({ TRUST_PROXY: 'true' });
    const seen = await links(target, proxied);
    for (const link of [seen.multipart, seen.rest, seen.graphql]) expect(link.startsWith('https://chat.example.com:8443/files/')).toBe(true);
    expect(seen.hsts).toMatch(/^max-age=\d+$/);
    // A forwarded host that would change a link's shape is not used: the Host header is.
    const odd = await links(target, { ...proxied, 'x-forwarded-host': 'evil.example/steal?' });
    expect(odd.multipart.startsWith(`https://${new URL(target.url).host}/files/`)).toBe(true);
  });
});

/** A graphql-ws client whose upgrade request carries `headers` (a proxy's X-Forwarded-For, say). */
function wsClient(target: TestServer, token: string | undefined, headers: Record<string, string> = {}) {
  let closed = false;
  const client = createClient({
    url: target.wsUrl,
    webSocketImpl: class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers });
      }
    },
    lazy: false,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    on: { closed: () => (closed = true) },
    onNonLazyError: () => {},
  });
  return { client, isClosed: () => closed };
}

/** One operation over graphql-ws: its result, or the errors of its `error` message. */
function wsRun(client: Client, query: string): Promise<GqlResult<unknown>> {
  return new Promise((resolve, reject) => {
    let result: GqlResult<unknown> | undefined;
    client.subscribe(
      { query },
      {
        next: (value) => (result = value as GqlResult<unknown>),
        error: (errors) => (Array.isArray(errors) ? resolve({ errors }) : reject(errors)),
        complete: () => resolve(result!),
      },
    );
  });
}

const LIMITS = { RATE_LIMITS: 'on', TRUST_PROXY: 'true', GRAPHQL_RATE_LIMIT: '5', GRAPHQL_RATE_LIMIT_ANONYMOUS: '4' };

/** Expects a GraphQL error saying RATE_LIMITED and when the limit resets. */
function expectRateLimited(result: GqlResult<unknown>) {
  const error = result.errors?.[0];
  expect(error?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number), reset: expect.any(Number) });
  expect(error!.extensions!.retryAfter as number).toBeGreaterThan(0);
  expect(error!.extensions!.retryAfter as number).toBeLessThanOrEqual(60);
  expect(error!.extensions!.reset as number).toBeGreaterThan(Date.now() / 1000);
}

describe('rate limits of GraphQL operations', () => {
  let target: TestServer;
  beforeAll(async () => {
    target = await server(LIMITS);
  });

  it('answers HTTP past a user’s limit with 429 RATE_LIMITED, and counts each user apart', async () => {
    const from = { 'x-forwarded-for': randomAddress() };
    const user = await signUp(target, from);
    for (let n = 1; n <= 5; n++) {
      const res = await post(target, '{ me { id } }', { token: user.token, headers: from });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('5');
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(5 - n));
      await res.json();
    }
    const refused = await post(target, '{ me { id } }', { token: user.token, headers: from });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    expectRateLimited((await refused.json()) as GqlResult<unknown>);
    // An upload is a GraphQL operation too: refused before its body is read.
    const upload_ = await upload(target, UPLOAD_FILE, user.token, from);
    expect(upload_.status).toBe(429);
    expectRateLimited((await upload_.json()) as GqlResult<unknown>);
    // Another user from the same address has a count of their own.
    const other = await signUp(target, from);
    expect((await post(target, '{ me { id } }', { token: other.token, headers: from })).status).toBe(200);
  });

  it('counts operations without a token per address', async () => {
    const from = { 'x-forwarded-for': randomAddress() };
    for (let n = 1; n <= 4; n++) expect((await post(target, '{ me { id } }', { headers: from })).status).toBe(200);
    const refused = await post(target, '{ me { id } }', { headers: from });
    expect(refused.status).toBe(429);
    expectRateLimited((await refused.json()) as GqlResult<unknown>);
    // A token that is not valid counts as its address.
    expect((await post(target, '{ me { id } }', { token: 'forged', headers: from })).status).toBe(429);
    expect((await post(target, '{ me { id } }', { headers: { 'x-forwarded-for': randomAddress() } })).status).toBe(200);
  });

  it('refuses a graphql-ws operation past the user’s limit with an error for it, and keeps the socket open', async () => {
    const from = { 'x-forwarded-for': randomAddress() };
    const user = await signUp(target, from);
    const ws = wsClient(target, user.token, from);
    for (let n = 1; n <= 5; n++) expect(await wsRun(ws.client, '{ me { id } }')).toEqual({ data: { me: { id: user.id } } });
    const refused = await wsRun(ws.client, '{ me { id } }');
    expectRateLimited(refused);
    expect(ws.isClosed()).toBe(false);
    // One count per user, whichever the transport.
    expect((await post(target, '{ me { id } }', { token: user.token, headers: from })).status).toBe(429);
    expectRateLimited(await wsRun(ws.client, 'subscription { userEvents { __typename } }'));
    expect(ws.isClosed()).toBe(false);
    await ws.client.dispose();
  });

  it('counts graphql-ws operations of a socket without a token per address', async () => {
    const from = { 'x-forwarded-for': randomAddress() };
    const ws = wsClient(target, undefined, from);
    for (let n = 1; n <= 4; n++) expect(await wsRun(ws.client, '{ me { id } }')).toEqual({ data: { me: null } });
    expectRateLimited(await wsRun(ws.client, '{ me { id } }'));
    expect(ws.isClosed()).toBe(false);
    const elsewhere = wsClient(target, undefined, { 'x-forwarded-for': randomAddress() });
    expect(await wsRun(elsewhere.client, '{ me { id } }')).toEqual({ data: { me: null } });
    await Promise.all([ws.client.dispose(), elsewhere.client.dispose()]);
  });

  it('counts nothing with RATE_LIMITS=off', async () => {
    const off = await server({ ...LIMITS, RATE_LIMITS: 'off' });
    const from = { 'x-forwarded-for': randomAddress() };
    const user = await signUp(off, from);
    const ws = wsClient(off, user.token, from);
    for (let n = 0; n < 8; n++) {
      const res = await post(off, '{ me { id } }', { token: user.token, headers: from });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
      await res.json();
      expect(await wsRun(ws.client, '{ me { id } }')).toEqual({ data: { me: { id: user.id } } });
      expect((await post(off, '{ me { id } }', { headers: from })).status).toBe(200);
    }
    await ws.client.dispose();
  });
});

// Instances share counts only through Redis, so this runs when DATABASE_URL and REDIS_URL are set.
describe.runIf(usingServices)('rate limits of GraphQL operations on two instances', () => {
  it('counts one user’s operations on both instances together', async () => {
    const [a, b] = await Promise.all([server(LIMITS), server(LIMITS)]);
    const from = { 'x-forwarded-for': randomAddress() };
    const user = await signUp(a, from);
    const onA = wsClient(a, user.token, from);
    for (const instance of [a, b, a, b]) expect((await post(instance, '{ me { id } }', { token: user.token, headers: from })).status).toBe(200);
    expect(await wsRun(onA.client, '{ me { id } }')).toEqual({ data: { me: { id: user.id } } });
    const refused = await post(b, '{ me { id } }', { token: user.token, headers: from });
    expect(refused.status).toBe(429);
    expectRateLimited((await refused.json()) as GqlResult<unknown>);
    expectRateLimited(await wsRun(onA.client, '{ me { id } }'));
    await onA.client.dispose();
  });
});
