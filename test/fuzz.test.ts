import { readdir } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
} from 'graphql';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { restDialects, socketDialects } from '../src/compat/dialects.ts';
import { schema } from '../src/graphql/schema.ts';
import { gql, signUp, type SignedUp } from './helpers/clients.ts';
import { directBetween, send } from './helpers/chat.ts';
import { Me } from './helpers/operations.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { PNG } from './helpers/upload.ts';

/**
 * A property-based fuzz of every surface, against a real server: every GraphQL operation
 * (over HTTP, and subscriptions over graphql-ws), every dialect REST route and every dialect
 * socket event, driven with generated bad input. After each request: no 5xx, no
 * INTERNAL_SERVER_ERROR, and a refused request stored nothing; at the end, the server answers
 * /health at once and no temporary upload file is left.
 *
 * Seeded (FUZZ_SEED, printed with every failure by fast-check) so a failure reproduces, and
 * bounded by runs and by time so CI stays well inside its limit.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
/** Each property stops generating after this long, whatever RUNS says. */
const TIME_LIMIT_MS = Number(process.env.FUZZ_SECONDS ?? 20) * 1000;

let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;
let conversationId: string;
const tally = { requests: 0, serverErrors: 0, internalErrors: 0, refused: 0, storedByRefused: 0 };

beforeAll(async () => {
  server = await startServer();
  alice = await signUp(server, { email: `${uniqueName()}@example.com` });
  bob = await signUp(server, { email: `${uniqueName()}@example.com` });
  conversationId = await directBetween(server, alice, bob);
  await send(server, bob, conversationId, 'something to read');
});

afterAll(async () => {
  // The counts the closing note quotes: one line per run of the suite.
  console.log(`fuzz (seed ${SEED}): ${JSON.stringify(tally)}`);
  await server?.stop();
});

// ---------------------------------------------------------------- values

const nul = fc.constantFrom('\u0000', 'a\u0000b', 'nul at the end\u0000');
const loneSurrogate = fc.constantFrom('\ud800', 'x\udfffy', 'end\udbff');
const oddText = fc.oneof(
  nul,
  loneSurrogate,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '   ', '<script>alert(1)</script>', "'; DROP TABLE \"User\"; --", '../../etc/passwd', '%00', '{"a":1}'),
  fc.constant('x'.repeat(20_000)),
);
/** Ids no row can have: the id rule must refuse each of them. */
const badId = fc.oneof(
  fc.constantFrom('abc', '1e3', '-1', '0', '2147483648', '99999999999999999999', ' 7', '7 ', '1.5', '', '0x10', '+5', '007', 'NaN'),
  fc.constantFrom(-1, 0, 2147483648, 2 ** 53, 1.5, -0),
  nul,
  loneSurrogate,
);
const wrongType = fc.oneof(fc.constant(true), fc.constant({}), fc.constant([]), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null));
const oddInt = fc.oneof(fc.constantFrom(-1, -2147483648, 2147483647, 2147483648, 1e15, 1.5, -0.5, 0), fc.integer());
/** An object nested `depth` levels deep. */
const nested = (depth: number) => {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};
const oddJson = fc.oneof(
  fc.integer({ min: 20, max: 1500 }).map(nested),
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ ['bad\u0000key']: fc.string() }),
  fc.record({ theme: loneSurrogate }),
);

/** A generated value for a GraphQL input type: mostly of the wrong kind, or unfit. */
function valueFor(type: GraphQLInputType, depth = 0): fc.Arbitrary<unknown> {
  if (isNonNullType(type)) return fc.oneof({ weight: 9, arbitrary: valueFor(type.ofType, depth) }, { weight: 1, arbitrary: fc.constant(null) });
  if (isListType(type)) {
    return fc.oneof(
      fc.array(valueFor(type.ofType, depth + 1), { maxLength: 4 }),
      fc.constant(Array.from({ length: 2000 }, (_, i) => String(i + 1))),
      valueFor(type.ofType, depth + 1),
      wrongType,
    );
  }
  if (isEnumType(type)) return fc.oneof(fc.constantFrom(...type.getValues().map((v) => v.name)), fc.constantFrom('NOPE', '', 'text'), wrongType);
  if (isInputObjectType(type)) {
    if (depth > 3) return wrongType;
    const fields = Object.values(type.getFields());
    const record = fc.record(Object.fromEntries(fields.map((f) => [f.name, valueFor(f.type, depth + 1)])), { requiredKeys: [] });
    return fc.oneof({ weight: 8, arbitrary: record }, { weight: 1, arbitrary: wrongType }, { weight: 1, arbitrary: oddText });
  }
  if (isScalarType(type)) {
    switch (type.name) {
      case 'ID':
        return fc.oneof({ weight: 4, arbitrary: badId }, { weight: 1, arbitrary: wrongType });
      case 'Int':
        return fc.oneof({ weight: 4, arbitrary: oddInt }, { weight: 1, arbitrary: wrongType });
      case 'Boolean':
        return fc.oneof(fc.boolean(), wrongType);
      case 'JSON':
        return fc.oneof(oddJson, wrongType);
      case 'Upload':
        return fc.oneof(fc.constant(null), oddText);
      default:
        return fc.oneof({ weight: 4, arbitrary: oddText }, { weight: 1, arbitrary: wrongType });
    }
  }
  return wrongType;
}

/** A JSON value written as a GraphQL literal (enums as bare names when they look like one). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${/^[_A-Za-z][_0-9A-Za-z]*$/.test(k) ? k : 'bad_key'}: ${literal(v)}`)
      .join(', ')}}`;
  }
  if (typeof value === 'string' && /^[A-Z][A-Z_]*$/.test(value)) return value;
  return JSON.stringify(value);
}

// ---------------------------------------------------------------- checks

/** Rows that a refused request must not have added to. */
async function storedRows(): Promise<string> {
  const tables = ['User', 'Device', 'RefreshToken', 'Conversation', 'Participant', 'Message', 'File', 'Call', 'PushSubscription'];
  const { rows } = await server.app.services.sql.query(`SELECT ${tables.map((t) => `(SELECT count(*) FROM "${t}") AS "${t}"`).join(', ')}`);
  return JSON.stringify(rows[0]);
}

function countAnswer(status: number, body: unknown) {
  tally.requests++;
  if (status >= 500) tally.serverErrors++;
  if (JSON.stringify(body ?? null).includes('INTERNAL_SERVER_ERROR')) tally.internalErrors++;
}

/** Runs one request and checks it: no 5xx, no internal error, and nothing stored if refused. */
async function checked(what: string, request: () => Promise<{ status: number; body: unknown; refused: boolean }>) {
  const before = await storedRows();
  const { status, body, refused } = await request();
  countAnswer(status, body);
  expect({ what, status: status >= 500 ? status : 'ok' }).toEqual({ what, status: 'ok' });
  expect({ what, body: JSON.stringify(body ?? null).slice(0, 400) }).not.toEqual({ what, body: expect.stringContaining('INTERNAL_SERVER_ERROR') });
  if (refused) {
    tally.refused++;
    const after = await storedRows();
    if (after !== before) tally.storedByRefused++;
    expect({ what, stored: after }).toEqual({ what, stored: before });
  }
}

const fuzzOptions = { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, endOnFailure: true };

// ---------------------------------------------------------------- GraphQL

/** Operations left out: signing the fuzzing user out would only fuzz the signed-out path. */
const SKIPPED = new Set(['logout']);

interface Target {
  kind: 'query' | 'mutation' | 'subscription';
  field: GraphQLField<unknown, unknown>;
}

const targets: Target[] = (['query', 'mutation', 'subscription'] as const).flatMap((kind) => {
  const root = kind === 'query' ? schema.getQueryType() : kind === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  return Object.values(root!.getFields())
    .filter((field) => !SKIPPED.has(field.name))
    .map((field) => ({ kind, field }));
});

const selection = (field: GraphQLField<unknown, unknown>) => (isScalarType(getNamedType(field.type)) || isEnumType(getNamedType(field.type)) ? '' : ' { __typename }');

/** One operation on `field` with generated arguments, as variables or written in the document. */
function operation(target: Target) {
  const args = target.field.args as GraphQLArgument[];
  const values = fc.record(Object.fromEntries(args.map((a) => [a.name, valueFor(a.type)])), { requiredKeys: [] });
  return fc.tuple(values, fc.boolean()).map(([given, inline]) => {
    const names = Object.keys(given);
    if (inline) {
      const list = names.map((n) => `${n}: ${literal(given[n])}`).join(', ');
      return { query: `${target.kind} { ${target.field.name}${list ? `(${list})` : ''}${selection(target.field)} }`, variables: {} };
    }
    const declared = names.map((n) => `$${n}: ${String(args.find((a) => a.name === n)!.type)}`).join(', ');
    const passed = names.map((n) => `${n}: $${n}`).join(', ');
    return {
      query: `${target.kind}${declared ? `(${declared})` : ''} { ${target.field.name}${passed ? `(${passed})` : ''}${selection(target.field)} }`,
      variables: given,
    };
  });
}

describe('fuzz: every GraphQL operation', { timeout: TIME_LIMIT_MS + 30_000 }, () => {
  it('answers generated bad input without a 5xx or an internal error, and stores nothing it refused', async () => {
    const queriesAndMutations = targets.filter((t) => t.kind !== 'subscription');
    const arbitrary = fc.constantFrom(...queriesAndMutations).chain((t) => operation(t).map((op) => ({ t, op })));
    await fc.assert(
      fc.asyncProperty(arbitrary, fc.constantFrom(alice, bob, null), async ({ t, op }, who) => {
        await checked(`${t.kind} ${t.field.name}`, async () => {
          const res = await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(who ? { authorization: `Bearer ${who.accessToken}` } : {}) },
            body: JSON.stringify(op),
          });
          const body = (await res.json()) as { data?: Record<string, unknown> | null; errors?: unknown[] };
          const refused = Boolean(body.errors?.length) && (body.data == null || body.data[t.field.name] == null);
          return { status: res.status, body, refused: t.kind === 'mutation' && refused };
        });
      }),
      fuzzOptions,
    );
  });

  it('answers malformed requests to /graphql (bodies, query strings, documents) without a 5xx', async () => {
    const bodies = fc.oneof(
      fc.string({ maxLength: 200 }).map((text) => ({ type: 'application/json', body: text })),
      fc.jsonValue({ maxDepth: 4 }).map((value) => ({ type: 'application/json', body: JSON.stringify(value) })),
      fc.record({ query: oddText, variables: fc.oneof(oddJson, wrongType) }).map((value) => ({ type: 'application/json', body: JSON.stringify(value) })),
      fc.string({ maxLength: 200 }).map((text) => ({ type: 'application/graphql', body: text })),
      fc.string({ maxLength: 200 }).map((text) => ({ type: 'application/x-www-form-urlencoded', body: `query=${encodeURIComponent(text)}` })),
      fc.constant({ type: 'application/json', body: JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(1_100_000) } }) }),
    );
    const queryStrings = fc.record({ query: fc.oneof(oddText, fc.constant('{ me { id } }')), variables: fc.oneof(fc.constantFrom('{', '[]', 'null', '{"a":'), fc.string()) });
    await fc.assert(
      fc.asyncProperty(fc.oneof(bodies.map((b) => ({ post: b })), queryStrings.map((q) => ({ get: q }))), async (request) => {
        const res =
          'post' in request
            ? await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': request.post.type, authorization: `Bearer ${alice.accessToken}` }, body: request.post.body })
            : await fetch(`${server.url}/graphql?${new URLSearchParams(request.get)}`, { headers: { authorization: `Bearer ${alice.accessToken}` } });
        const text = await res.text();
        countAnswer(res.status, text);
        expect(res.status).toBeLessThan(500);
        expect(text).not.toContain('INTERNAL_SERVER_ERROR');
      }),
      { ...fuzzOptions, numRuns: Math.ceil(RUNS / 2) },
    );
  });

  it('answers malformed and truncated multipart uploads with 4xx and leaves no temporary file', async () => {
    const operations = JSON.stringify({ query: 'mutation ($file: Upload!) { uploadFile(file: $file) { id } }', variables: { file: null } });
    const upload = fc.record({
      filename: fc.oneof(oddText, fc.constant('photo.png')),
      map: fc.oneof(fc.constant(JSON.stringify({ 0: ['variables.file'] })), fc.constantFrom('{', '[]', '{"0":"x"}', '{"0":["variables.__proto__.x"]}', '{"9":["variables.file"]}')),
      operations: fc.oneof(fc.constant(operations), oddText),
      cut: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
      boundary: fc.oneof(fc.constant('fuzz-boundary'), fc.constantFrom('', '"', 'x'.repeat(100))),
    });
    await fc.assert(
      fc.asyncProperty(upload, async ({ filename, map, operations: ops, cut, boundary }) => {
        const part = (head: string, data: Buffer | string) => Buffer.concat([Buffer.from(`--fuzz-boundary\r\nContent-Disposition: form-data; ${head}\r\n\r\n`), Buffer.from(data), Buffer.from('\r\n')]);
        const whole = Buffer.concat([
          part('name="operations"', ops),
          part('name="map"', map),
          part(`name="0"; filename="${filename.replaceAll('"', '')}"`, PNG),
          Buffer.from('--fuzz-boundary--\r\n'),
        ]);
        const body = cut === undefined ? whole : whole.subarray(0, cut);
        await checked('multipart /graphql', async () => {
          const res = await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${alice.accessToken}` },
            body,
          });
          const text = await res.text();
          return { status: res.status, body: text, refused: res.status >= 400 };
        });
      }),
      { ...fuzzOptions, numRuns: Math.ceil(RUNS / 4) },
    );
    expect(await readdir(path.join(server.dataDir, 'tmp')).catch(() => [])).toEqual([]);
  });

  it('answers subscriptions with bad arguments over graphql-ws with an error, never an internal one', async () => {
    const subscriptions = targets.filter((t) => t.kind === 'subscription');
    const socket = await openGraphQLSocket(alice.accessToken);
    let id = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...subscriptions).chain((t) => operation(t)), async (op) => {
        const answer = await socket.request(String(++id), op);
        countAnswer(200, answer);
        expect(JSON.stringify(answer)).not.toContain('INTERNAL_SERVER_ERROR');
        // A bad operation is that operation's error: the socket and its other operations stay.
        expect({ query: op.query, open: socket.ws.readyState === WebSocket.OPEN }).toEqual({ query: op.query, open: true });
      }),
      { ...fuzzOptions, numRuns: Math.ceil(RUNS / 4) },
    );
    // And frames that are not graphql-ws at all: the socket may be closed, the server lives on.
    for (const frame of ['not json', '{}', '{"type":"subscribe"}', '{"type":"subscribe","id":"x","payload":{"query":1}}']) socket.ws.send(frame);
    socket.ws.terminate();
  });
});

/** A raw graphql-ws socket, acknowledged, that answers each operation with its first frame. */
async function openGraphQLSocket(token: string) {
  const ws = new WebSocket(server.wsUrl, 'graphql-transport-ws');
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const frames: Array<{ id?: string; type: string; payload?: unknown }> = [];
  let wake: () => void = () => {};
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)));
    wake();
  });
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  const take = async (match: (f: (typeof frames)[number]) => boolean) => {
    for (;;) {
      const index = frames.findIndex(match);
      if (index >= 0) return frames.splice(index, 1)[0];
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  await take((f) => f.type === 'connection_ack');
  return {
    ws,
    /** The operation's first answer (an error, or its first result); a live subscription is completed. */
    async request(id: string, payload: { query: string; variables: Record<string, unknown> }) {
      ws.send(JSON.stringify({ id, type: 'subscribe', payload }));
      // A subscription that started answers nothing until an event: ask for a result by completing it.
      const first = await Promise.race([
        take((f) => f.id === id),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 150)),
      ]);
      if (!first) {
        ws.send(JSON.stringify({ id, type: 'complete' }));
        return { started: true };
      }
      if (first.type === 'next') ws.send(JSON.stringify({ id, type: 'complete' }));
      return first;
    },
  };
}

// ---------------------------------------------------------------- dialects

/** Field names the seeds use, so generated bodies reach the rules and not only "is required". */
const SEED_FIELDS = [
  'username', 'password', 'email', 'name', 'display_name', 'bio', 'settings', 'content', 'type', 'message',
  'conversation_id', 'participant_ids', 'title', 'subscription', 'endpoint', 'file_url', 'file_name', 'file_size',
  'file_type', 'to_email', 'other_user_id', 'remember_me', 'avatar_url', 'message_id', 'chat_id', 'user_id', 'is_typing',
];
const QUERY_NAMES = ['limit', 'offset', 'before', 'after', 'search', 'skip', 'query', 'page'];

const seedBody = fc.dictionary(fc.constantFrom(...SEED_FIELDS), fc.oneof(oddText, badId, wrongType, oddJson), { maxKeys: 6 });
/** Stands for the fuzzing users' conversation id, known only once the server runs. */
const THE_CONVERSATION = '<the conversation>';

/** Path parameters: ids that name nothing, odd text, and (so bodies reach deeper) the fuzzing users' conversation. */
const paramValue = fc.oneof(
  badId.map(String),
  fc.constantFrom('%00', '%ff', '..%2F..%2Fetc', 'x'.repeat(3000), '%F0%9F%98%80', '%ED%A0%80', 'me'),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constant(THE_CONVERSATION),
);

/**
 * The route's path with these parameters. The fuzzing users' conversation goes only where a
 * conversation or chat is named: its id may also be one of theirs as a user (a DELETE
 * /api/users/:id would then delete the fuzzing user).
 */
function pathOf(template: string, values: string[]): string {
  let i = 0;
  return template.replace(/:([a-z_]+)/gi, (_, name: string) => {
    const value = values[i++ % values.length];
    if (value !== THE_CONVERSATION) return value;
    return /conversation|chat/.test(name) ? conversationId : 'abc';
  });
}

describe('fuzz: every dialect route and socket event', { timeout: TIME_LIMIT_MS + 30_000 }, () => {
  // Signing out takes no input to fuzz, and would leave the fuzzing users signed out.
  const routes = restDialects.flatMap((dialect) => dialect.routes.filter((route) => !route.path.includes('logout')).map((route) => ({ dialect, route })));

  it('answers generated bad requests to every REST route without a 5xx, storing nothing it refused', async () => {
    const request = fc.record({
      at: fc.constantFrom(...routes),
      params: fc.array(paramValue, { minLength: 1, maxLength: 3 }),
      query: fc.dictionary(fc.constantFrom(...QUERY_NAMES), fc.oneof(oddText, badId.map(String)), { maxKeys: 3 }),
      body: fc.oneof(
        { weight: 6, arbitrary: seedBody.map((b) => ({ type: 'application/json', text: JSON.stringify(b) })) },
        { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((text) => ({ type: 'application/json', text })) },
        { weight: 1, arbitrary: seedBody.map((b) => ({ type: 'application/x-www-form-urlencoded', text: new URLSearchParams(Object.entries(b).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v) ?? ''])).toString() })) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map((cut) => ({ type: 'multipart/form-data; boundary=b', text: `--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n${PNG.toString('latin1')}\r\n--b--\r\n`.slice(0, cut) })) },
        { weight: 1, arbitrary: fc.constant({ type: 'application/json', text: JSON.stringify({ content: 'x'.repeat(1_100_000) }) }) },
      ),
      who: fc.constantFrom('alice', 'bob', 'nobody'),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ at, params, query, body, who }) => {
        const { dialect, route } = at;
        const url = new URL(`${server.url}${dialect.mount}${pathOf(route.path, params)}`);
        for (const [k, v] of Object.entries(query)) url.searchParams.set(k, typeof v === 'string' ? v : JSON.stringify(v));
        const user = who === 'alice' ? alice : who === 'bob' ? bob : null;
        await checked(`${route.method} ${dialect.mount}${route.path}`, async () => {
          const res = await fetch(url, {
            method: route.method,
            headers: {
              ...(user ? { authorization: `Bearer ${user.accessToken}` } : {}),
              'x-requested-with': 'XMLHttpRequest',
              ...(route.method === 'GET' ? {} : { 'content-type': body.type }),
            },
            body: route.method === 'GET' ? undefined : Buffer.from(body.text, 'latin1'),
          });
          const text = await res.text();
          return { status: res.status, body: text, refused: route.method !== 'GET' && res.status >= 400 };
        });
      }),
      fuzzOptions,
    );
    expect(await readdir(path.join(server.dataDir, 'tmp')).catch(() => [])).toEqual([]);
  });

  it('answers generated bad socket events of every dialect without an internal error or a dropped socket', async () => {
    const sockets = new Map<string, Socket>();
    for (const dialect of socketDialects) {
      const socket = ioClient(`${server.url}${dialect.namespace}`, {
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        auth: { token: alice.accessToken },
        extraHeaders: { cookie: `session=${alice.accessToken}` },
      });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
      sockets.set(dialect.namespace, socket);
    }
    const events = socketDialects.flatMap((dialect) => Object.keys(dialect.events).map((event) => ({ namespace: dialect.namespace, event })));
    const payload = fc.oneof(
      { weight: 6, arbitrary: seedBody },
      { weight: 1, arbitrary: wrongType },
      { weight: 1, arbitrary: oddText },
      { weight: 1, arbitrary: oddJson },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...events), payload, async ({ namespace, event }, data) => {
        const socket = sockets.get(namespace)!;
        const before = await storedRows();
        const reply = await socket.timeout(5000).emitWithAck(event, data).catch((err: Error) => ({ noReply: err.message }));
        countAnswer(200, reply);
        expect({ event, connected: socket.connected }).toEqual({ event, connected: true });
        expect(JSON.stringify(reply ?? null)).not.toMatch(/INTERNAL_SERVER_ERROR|Internal server error/);
        const failed = JSON.stringify(reply ?? null).match(/"(success":false|error|message":"[^"]*(required|not found|must))/);
        if (failed) {
          tally.refused++;
          expect({ event, stored: await storedRows() }).toEqual({ event, stored: before });
        }
      }),
      { ...fuzzOptions, numRuns: Math.ceil(RUNS / 2) },
    );
    for (const socket of sockets.values()) socket.disconnect();
  });

  it('is alive, healthy and answering at the end', async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    const me = await gql(server, Me, undefined, alice.accessToken);
    expect(me.data?.me?.id).toBe(alice.id);
    expect(tally.serverErrors).toBe(0);
    expect(tally.internalErrors).toBe(0);
    expect(tally.storedByRefused).toBe(0);
  });
});
