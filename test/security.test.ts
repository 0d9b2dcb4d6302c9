import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { io as ioClient } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWs, gql, signUp, type SignedUp } from './helpers/clients.ts';
import { directBetween, History, SendMessage } from './helpers/chat.ts';
import { spawnServer, type ServerProcess } from './helpers/process.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { PNG } from './helpers/upload.ts';
import { Register } from './helpers/operations.ts';

/** A request as an attacker writes it: exact bytes, any headers, and its answer (status, body). */
function raw(base: string, target: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; declaredLength?: number }) {
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : (options.body ?? Buffer.alloc(0));
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const chunked = options.headers?.['transfer-encoding'] === 'chunked';
    const req = http.request(new URL(target, base), {
      method: options.method ?? 'POST',
      headers: { ...(chunked ? {} : { 'content-length': String(options.declaredLength ?? body.length) }), ...options.headers },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const BOUNDARY = 'attacker-boundary';
const multipartType = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };

/** A multipart body of these parts, optionally cut off before its end. */
function form(parts: Array<{ name: string; filename?: string; filenameStar?: string; type?: string; data: string | Buffer }>, { truncateAt }: { truncateAt?: number } = {}) {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const filename = part.filenameStar !== undefined ? `; filename*=UTF-8''${part.filenameStar}` : part.filename !== undefined ? `; filename="${part.filename}"` : '';
    const disposition = `form-data; name="${part.name}"${filename}`;
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  const whole = Buffer.concat(chunks);
  return truncateAt === undefined ? whole : whole.subarray(0, truncateAt);
}

const uploadOperation = (filename: string, bytes: Buffer, encoded = false) => [
  { name: 'operations', data: JSON.stringify({ query: 'mutation ($file: Upload!) { uploadFile(file: $file) { id name } }', variables: { file: null } }) },
  { name: 'map', data: JSON.stringify({ 0: ['variables.file'] }) },
  { name: '0', ...(encoded ? { filenameStar: filename } : { filename }), type: 'image/png', data: bytes },
];

describe('malformed uploads (a real server process)', () => {
  let proc: ServerProcess;
  let user: SignedUp;
  let stillRunning = true;
  const bearer = () => ({ authorization: `Bearer ${user.accessToken}`, 'x-requested-with': 'fetch' });

  beforeAll(async () => {
    proc = await spawnServer();
    void proc.exited.then(() => (stillRunning = false));
    user = await signUp(proc);
  });
  afterAll(() => {
    proc?.child.kill('SIGTERM');
    return proc?.exited;
  });

  const alive = async () => {
    const health = await fetch(`${proc.url}/health`);
    expect(health.status).toBe(200);
    expect(stillRunning).toBe(true);
  };
  const leftovers = async () => (await readdir(path.join(proc.dataDir, 'tmp')).catch(() => [])).length;

  it('refuses anonymous multipart requests before reading them, on every upload path', async () => {
    const nulName = form(uploadOperation('a\u0000b.png', PNG));
    const anonymous = await raw(proc.url, '/graphql', { headers: multipartType, body: nulName });
    expect(anonymous.status).toBe(401);
    for (const route of ['/chattrix/api/upload', '/chattrix/api/user/upload-avatar']) {
      const truncated = form([{ name: 'file', filename: 'x.png', type: 'image/png', data: PNG }], { truncateAt: 60 });
      const answer = await raw(proc.url, route, { headers: { ...multipartType, 'x-requested-with': 'fetch' }, body: truncated });
      expect(answer.status).toBe(401);
    }
    await alive();
  });

  it('refuses a NUL byte in a part header, and stores a NUL sent percent-encoded under a clean name', async () => {
    const inHeader = await raw(proc.url, '/graphql', { headers: { ...multipartType, ...bearer() }, body: form(uploadOperation('a\u0000b.png', PNG)) });
    expect(inHeader.status).toBe(400);
    const encoded = await raw(proc.url, '/graphql', { headers: { ...multipartType, ...bearer() }, body: form(uploadOperation('dir%2Fa%00b%0A.png', PNG, true)) });
    expect(encoded.status).toBe(200);
    expect(JSON.parse(encoded.text).data.uploadFile.name).toBe('ab.png');
    await alive();
  });

  it('answers truncated and malformed forms with 400 on every upload path, and keeps serving', async () => {
    const cases: Array<[string, Record<string, string>, Buffer]> = [
      ['/graphql', multipartType, form(uploadOperation('x.png', PNG), { truncateAt: 400 })],
      ['/graphql', multipartType, form(uploadOperation('a\u0000b.png', PNG), { truncateAt: 380 })],
      ['/graphql', { 'content-type': 'multipart/form-data' }, form(uploadOperation('x.png', PNG))],
      ['/graphql', multipartType, Buffer.from('no boundary in here at all')],
      ['/chattrix/api/upload', multipartType, form([{ name: 'file', filename: 'x.png', type: 'image/png', data: PNG }], { truncateAt: 120 })],
      ['/chattrix/api/user/upload-avatar', multipartType, form([{ name: 'file', filename: 'a\u0000.png', type: 'image/png', data: PNG }], { truncateAt: 110 })],
      ['/chattrix/api/user/upload-avatar', { 'content-type': 'multipart/form-data; boundary=' }, PNG],
      // A file the map does not name is skipped unread, and cut off inside it.
      ['/graphql', multipartType, form([...uploadOperation('x.png', PNG).slice(0, 1), { name: 'map', data: '{}' }, { name: 'x', filename: 'x.png', data: PNG }], { truncateAt: 300 })],
    ];
    for (const [route, headers, body] of cases) {
      const answer = await raw(proc.url, route, { headers: { ...headers, ...bearer() }, body });
      expect({ route, status: answer.status }).toEqual({ route, status: 400 });
    }
    await alive();
    expect(await leftovers()).toBe(0);
  });

  it('leaves no temporary directory when a stranger closes a form at once, on routes that read forms unsigned', async () => {
    for (let i = 0; i < 10; i++) {
      for (const route of ['/flask-chat/api/auth/login', '/socket-chat/api/auth/login']) {
        await new Promise<void>((resolve) => {
          const req = http.request(new URL(route, proc.url), { method: 'POST', headers: { ...multipartType, 'content-length': '100000' } });
          req.on('error', () => resolve());
          req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\nx`, () => {
            req.destroy();
            resolve();
          });
        });
      }
    }
    // Each request settles on its own time once its client has gone: wait for the last one.
    while ((await leftovers()) > 0) await new Promise((r) => setTimeout(r, 20));
    await alive();
  });

  it('cleans up after a client that leaves halfway through an upload', async () => {
    const body = form(uploadOperation('x.png', Buffer.alloc(64 * 1024, 7)));
    await new Promise<void>((resolve) => {
      const req = http.request(new URL('/graphql', proc.url), { method: 'POST', headers: { ...multipartType, ...bearer(), 'content-length': String(body.length * 4) } });
      req.on('error', () => resolve());
      req.write(body.subarray(0, body.length - 10), () => {
        req.destroy();
        resolve();
      });
    });
    // The server notices the closed connection on its own time: wait until its files are gone.
    while ((await leftovers()) > 0) await new Promise((r) => setTimeout(r, 20));
    await alive();
  });
});

describe('limits on what one request may ask', () => {
  let server: TestServer;
  let user: SignedUp;
  beforeAll(async () => {
    // One database connection, so a test can hold it and make every operation wait (both modes).
    // The outbox relay's poll (every OUTBOX_POLL seconds) also queries the database: while a
    // test holds the one connection, it would be the waiter some tests wait for.
    server = await startServer({ OPERATION_TIMEOUT: '1', WS_MAX_OPERATIONS: '20', DATABASE_POOL_SIZE: '1', OUTBOX_POLL: '3600' });
    user = await signUp(server);
  });
  afterAll(() => server?.stop());

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}`, ...headers },
      body: JSON.stringify(body),
    });
  const refusal = async (query: string) => {
    const result = (await (await post({ query })).json()) as { errors?: Array<{ message: string; extensions: Record<string, unknown> }>; data?: unknown };
    expect(result.data ?? null).toBeNull();
    return result.errors![0];
  };

  it('refuses 10,000 aliases of users(first: 50) before running it', async () => {
    const query = `{ ${Array.from({ length: 10_000 }, (_, i) => `a${i}: users(first: 50) { edges { node { id } } }`).join(' ')} }`;
    const error = await refusal(query);
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'QUERY_LIMIT', limit: 'tokens' });
  });

  it.each([
    ['aliases', `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: me { id }`).join(' ')} }`],
    ['depth', '{ conversations { edges { node { lastMessage { replyTo { replyTo { replyTo { replyTo { replyTo { replyTo { replyTo { replyTo { id } } } } } } } } } } } } }'],
    ['directives', `{ me { id ${'@include(if: true) '.repeat(51)} } }`],
    ['cost', '{ conversations(first: 100) { edges { node { messages(first: 200) { edges { node { id content attachments { id url } } } } } } } }'],
  ])('refuses an operation over its %s limit, naming the limit', async (limit, query) => {
    const error = await refusal(query);
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'QUERY_LIMIT', limit });
  });

  it('counts a page size given in a variable towards the cost', async () => {
    const query = 'query ($n: Int) { a: users(first: $n) { edges { node { id username } } } b: users(first: $n) { edges { node { id username } } } }';
    const small = (await (await post({ query, variables: { n: 10 } })).json()) as { errors?: unknown };
    expect(small.errors).toBeUndefined();
    const many = `query ($n: Int) { ${Array.from({ length: 30 }, (_, i) => `a${i}: conversations(first: $n) { edges { node { id title participants { id username } } } }`).join(' ')} }`;
    const result = (await (await post({ query: many, variables: { n: 100 } })).json()) as { errors: Array<{ extensions: Record<string, unknown> }> };
    expect(result.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'cost' });
  });

  it('answers a form-encoded POST whose variables are not JSON with 400', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${user.accessToken}` },
      body: 'query=%7Bme%7Bid%7D%7D&variables=%7B',
    });
    expect(res.status).toBe(400);
  });

  it('refuses a multipart operation it cannot run with 400: two operations unnamed, a subscription, odd variables', async () => {
    const multipart = async (operations: unknown) => {
      const body = new FormData();
      body.append('operations', JSON.stringify(operations));
      body.append('map', '{}');
      const res = await fetch(`${server.url}/graphql`, { method: 'POST', body, headers: { authorization: `Bearer ${user.accessToken}` } });
      return { status: res.status, text: await res.text() };
    };
    for (const operations of [
      { query: 'query A { me { id } } query B { me { id } }' },
      { query: '{ me { id } }', operationName: 7 },
      { query: 'query A { me { id } }', operationName: 'C' },
      { query: 'subscription { userEvents { __typename } }' },
      { query: '{ me { id } }', variables: 'x' },
      { query: '{ me { id } }', variables: [1] },
    ]) {
      const answer = await multipart(operations);
      expect({ operations, status: answer.status }).toEqual({ operations, status: 400 });
      expect(answer.text).not.toContain('INTERNAL_SERVER_ERROR');
    }
  });

  it('checks the caller before reading an upload sent to /graphql/ as well', async () => {
    const res = await fetch(`${server.url}/graphql/`, { method: 'POST', body: new FormData() });
    expect(res.status).toBe(401);
  });

  it('refuses a body over 1 MB, and one of unknown length, before reading it', async () => {
    const big = await post({ query: '{ me { id } }', variables: { pad: 'x'.repeat(1024 * 1024) } });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const chunked = await raw(server.url, '/graphql', { headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: '' });
    expect(chunked.status).toBe(411);
  });

  it('limits the operations running at once on one socket, and frees a place when one completes', async () => {
    const listening = async () => ((await (await fetch(`${server.url}/metrics`)).json()) as { subscriptions: number }).subscriptions;
    const ws = connectWs(server, user.accessToken);
    await ws.connected;
    const before = await listening();
    const query = 'subscription { userEvents { __typename } }';
    const subscriptions = Array.from({ length: 20 }, () => ws.client.iterate({ query }));
    // The server counts an operation from its first frame: wait until all twenty are listening.
    while ((await listening()) < before + 20) await new Promise((r) => setTimeout(r, 20));
    const refused = await ws.client.iterate({ query }).next().catch((errors: Array<{ extensions: Record<string, unknown> }>) => errors);
    expect((refused as Array<{ extensions: Record<string, unknown> }>)[0].extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'TOO_MANY_OPERATIONS' });
    await subscriptions[0].return!();
    while ((await listening()) > before + 19) await new Promise((r) => setTimeout(r, 20));
    const me = await ws.client.iterate({ query: '{ me { id } }' }).next();
    expect(me.value).toEqual({ data: { me: { id: user.id } } });
    await Promise.all(subscriptions.slice(1).map((s) => s.return!()));
    ws.client.terminate();
  });

  it('keeps one subscription when a Socket.IO client joins the same conversation twice at once', async () => {
    const other = await signUp(server);
    const conversation = await directBetween(server, user, other);
    const listening = async () => ((await (await fetch(`${server.url}/metrics`)).json()) as { subscriptions: number }).subscriptions;
    const before = await listening();
    const socket = ioClient(`${server.url}/chattrix`, { transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { cookie: `session=${user.accessToken}` } });
    await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
    await Promise.all([1, 2, 3].map(() => socket.emitWithAck('join_conversation', { conversation_id: Number(conversation) })));
    socket.disconnect();
    while ((await listening()) !== before) await new Promise((r) => setTimeout(r, 20));
  });

  it('answers a syntax error over graphql-ws as an error of that operation, keeping the socket', async () => {
    const ws = connectWs(server, user.accessToken);
    await ws.connected;
    const failed = await ws.client.iterate({ query: '{ me { id ' }).next().catch((errors: Array<{ message: string }>) => errors);
    expect((failed as Array<{ message: string }>)[0].message).toMatch(/Syntax Error/);
    const me = await ws.client.iterate({ query: '{ me { id } }' }).next();
    expect(me.value).toEqual({ data: { me: { id: user.id } } });
    ws.client.terminate();
  });

  describe('an operation held up in the database', () => {
    let other: SignedUp;
    let conversationId: string;
    beforeAll(async () => {
      other = await signUp(server);
      conversationId = await directBetween(server, user, other);
    });

    /** Takes the server's only database connection: its operations wait until `release`. */
    async function holdDatabase() {
      const client = await server.app.services.sql.connect();
      return () => client.release();
    }
    const history = async () => {
      const result = await gql(server, History, { conversationId, last: 50 }, user.accessToken);
      return result.data!.messages.edges.map((e) => e.node.content);
    };
    const metrics = async () => (await (await fetch(`${server.url}/metrics`)).json()) as { operationsTimedOut: number; operationsAbandoned: number };
    /** A graphql-ws socket of the user's, whose session the server remembers (no query to sign in). */
    const signedInSocket = async () => {
      const ws = connectWs(server, user.accessToken);
      await ws.connected;
      await history();
      return ws;
    };

    it('answers a query that runs longer than OPERATION_TIMEOUT at once, with UNAVAILABLE', async () => {
      await history(); // the session is remembered from here on, so signing in needs no query
      const before = await metrics();
      const release = await holdDatabase();
      try {
        const result = await gql(server, History, { conversationId, last: 10 }, user.accessToken);
        expect(result.errors![0].extensions).toMatchObject({ code: 'UNAVAILABLE', reason: 'TIMEOUT' });
      } finally {
        release();
      }
      expect((await metrics()).operationsTimedOut).toBe(before.operationsTimedOut + 1);
    });

    it('stops a query past its budget over graphql-ws and in a dialect route alike, keeping the socket', async () => {
      const ws = await signedInSocket();
      const release = await holdDatabase();
      try {
        const stopped = await ws.client.iterate({ query: 'query ($c: ID!) { messages(conversationId: $c) { edges { cursor } } }', variables: { c: conversationId } }).next();
        expect((stopped.value as { errors: Array<{ extensions: Record<string, unknown> }> }).errors[0].extensions).toMatchObject({ code: 'UNAVAILABLE', reason: 'TIMEOUT' });
        const route = await fetch(`${server.url}/flask-chat/api/users/`, { headers: { authorization: `Bearer ${user.accessToken}` } });
        expect(route.status).toBe(503);
      } finally {
        release();
      }
      const me = await ws.client.iterate({ query: '{ me { id } }' }).next();
      expect(me.value).toEqual({ data: { me: { id: user.id } } });
      ws.client.terminate();
    });

    it('counts an operation until it has ended, even when its client sent complete', async () => {
      const ws = await signedInSocket();
      const release = await holdDatabase();
      try {
        // Twenty sends wait for the database; their client completes each at once (raw frames on
        // the client's socket, since graphql-ws's client sends nothing for one disposed so soon).
        const raw = await ws.socket;
        for (let i = 0; i < 20; i++) {
          const payload = { query: `mutation { sendMessage(input: {conversationId: "${conversationId}", content: "queued ${i}"}) { id } }` };
          raw.send(JSON.stringify({ id: `queued-${i}`, type: 'subscribe', payload }));
          raw.send(JSON.stringify({ id: `queued-${i}`, type: 'complete' }));
        }
        // Sent right after them, so it arrives while they wait.
        const refused = await ws.client.iterate({ query: '{ me { id } }' }).next().catch((errors: Array<{ extensions: Record<string, unknown> }>) => errors);
        expect((refused as Array<{ extensions: Record<string, unknown> }>)[0].extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'TOO_MANY_OPERATIONS' });
      } finally {
        release();
      }
      // Once they have ended, the socket may run operations again.
      for (;;) {
        const me = await ws.client.iterate({ query: '{ me { id } }' }).next().catch(() => null);
        if (me?.value) {
          expect(me.value).toEqual({ data: { me: { id: user.id } } });
          break;
        }
      }
      ws.client.terminate();
    });

    it('limits the events handled at once on one Socket.IO socket', async () => {
      const socket = ioClient(`${server.url}/socket-chat`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: user.accessToken } });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
      await history();
      const release = await holdDatabase();
      let replies: unknown[] = [];
      try {
        const pending = Array.from({ length: 21 }, () => socket.timeout(10_000).emitWithAck('mark_as_read', { conversation_id: conversationId }).catch((err: Error) => err.message));
        // The twenty-first answers at once: the others wait for the database.
        replies = [await pending[20]];
      } finally {
        release();
      }
      expect(JSON.stringify(replies[0])).toMatch(/At most 20 events/);
      socket.disconnect();
    });

    it('counts a dialect request whose client left while it waited as abandoned', async () => {
      await history();
      const before = (await metrics()).operationsAbandoned;
      const release = await holdDatabase();
      try {
        const leaving = new AbortController();
        const sent = fetch(`${server.url}/flask-chat/api/users/`, { signal: leaving.signal, headers: { authorization: `Bearer ${user.accessToken}` } }).catch(() => null);
        while (server.app.services.sql.waitingCount === 0) await new Promise((r) => setTimeout(r, 5));
        leaving.abort();
        await sent;
        while ((await metrics()).operationsAbandoned === before) await new Promise((r) => setTimeout(r, 10));
      } finally {
        release();
      }
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    });

    it('runs no further field of an operation whose client went away', async () => {
      await history();
      const before = (await metrics()).operationsAbandoned;
      const release = await holdDatabase();
      const leaving = new AbortController();
      const sent = fetch(`${server.url}/graphql`, {
        method: 'POST',
        signal: leaving.signal,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}` },
        body: JSON.stringify({
          query: `mutation { first: sendMessage(input: {conversationId: "${conversationId}", content: "first of two"}) { id }
                             second: sendMessage(input: {conversationId: "${conversationId}", content: "second of two"}) { id } }`,
        }),
      }).catch(() => null);
      // The first send waits for the connection; the client leaves meanwhile.
      while (server.app.services.sql.waitingCount === 0) await new Promise((r) => setTimeout(r, 5));
      leaving.abort();
      await sent;
      while ((await metrics()).operationsAbandoned === before) await new Promise((r) => setTimeout(r, 10));
      release();
      // Had the second send run, it would have been under way before this one arrived.
      await gql(server, SendMessage, { input: { conversationId, content: 'after' } }, user.accessToken);
      const contents = await history();
      expect(contents.at(-1)).toBe('after');
      expect(contents).not.toContain('second of two');
    });
  });
});

describe('input that used to end in a 5xx', () => {
  let server: TestServer;
  let user: SignedUp;
  let other: SignedUp;
  let conversationId: string;
  beforeAll(async () => {
    server = await startServer();
    user = await signUp(server);
    other = await signUp(server);
    conversationId = await directBetween(server, user, other);
  });
  afterAll(() => server?.stop());

  const run = async (query: string, variables: Record<string, unknown> = {}, token = user.accessToken) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    expect(res.status).toBeLessThan(500);
    return (await res.json()) as { data?: unknown; errors?: Array<{ message: string; extensions: { code: string; fields?: Record<string, string> } }> };
  };
  const codeOf = (result: Awaited<ReturnType<typeof run>>) => result.errors?.[0]?.extensions.code;

  const BAD_IDS = ['abc', '1e3', '-1', '0', '2147483648', '99999999999', 2 ** 31, -5];
  const OPERATIONS_WITH_IDS: Array<[string, (id: unknown) => [string, Record<string, unknown>]]> = [
    ['user', (id) => ['query ($id: ID) { user(id: $id) { id } }', { id }]],
    ['directConversation', (id) => ['query ($id: ID!) { directConversation(userId: $id) { id } }', { id }]],
    ['ensureDirectConversation', (id) => ['mutation ($id: ID!) { ensureDirectConversation(userId: $id) { id } }', { id }]],
    ['conversation', (id) => ['query ($id: ID!) { conversation(id: $id) { id } }', { id }]],
    ['messages(conversationId)', (id) => ['query ($id: ID!) { messages(conversationId: $id) { edges { cursor } } }', { id }]],
    ['messages(after)', (id) => ['query ($c: ID!, $after: String) { messages(conversationId: $c, after: $after) { edges { cursor } } }', { c: conversationId, after: String(id) }]],
    ['answerCall', (id) => ['mutation ($id: ID!) { answerCall(id: $id, answer: {}) { id } }', { id }]],
    ['endCall', (id) => ['mutation ($id: ID!) { endCall(id: $id) { id } }', { id }]],
    ['addConversationMembers', (id) => ['mutation ($c: ID!, $ids: [ID!]!) { addConversationMembers(conversationId: $c, userIds: $ids) { id } }', { c: conversationId, ids: [id] }]],
    ['sendMessage(recipientId)', (id) => ['mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }', { i: { recipientId: id, content: 'x' } }]],
    ['sendMessage(replyToId)', (id) => ['mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }', { i: { conversationId, replyToId: id, content: 'x' } }]],
    ['sendMessage(attachmentIds)', (id) => ['mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }', { i: { conversationId, attachmentIds: [id], content: 'x' } }]],
    ['deleteFile', (id) => ['mutation ($id: ID!) { deleteFile(id: $id) }', { id }]],
    ['deleteUser', (id) => ['mutation ($id: ID!) { deleteUser(id: $id) }', { id }]],
    ['banUser', (id) => ['mutation ($id: ID!) { banUser(id: $id) { id } }', { id }]],
    ['presence', (id) => ['subscription ($ids: [ID!]!) { presence(userIds: $ids) { isOnline } }', { ids: [id] }]],
  ];

  it.each(OPERATIONS_WITH_IDS)('refuses ids that name nothing on %s with BAD_USER_INPUT or NOT_FOUND', async (_name, build) => {
    // "0" is a cursor of its own in messages: it reads from the start.
    for (const id of BAD_IDS.filter((id) => _name !== 'messages(after)' || id !== '0')) {
      const [query, variables] = build(id);
      const result = await run(query, variables);
      expect({ id, code: codeOf(result) }).toEqual({ id, code: expect.stringMatching(/^(BAD_USER_INPUT|NOT_FOUND|FORBIDDEN)$/) });
    }
  });

  it('refuses an id written in the document the same way', async () => {
    const result = await run('{ user(id: "1e3") { id } }');
    expect(codeOf(result)).toBe('BAD_USER_INPUT');
    expect((await run('{ user(id: 99999999999) { id } }')).errors![0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it.each([
    ['a NUL', 'a\u0000b', 'must not contain NUL characters'],
    ['a lone surrogate', 'a\ud800b', 'must be valid Unicode (it holds a lone surrogate)'],
  ])('refuses %s in any string, naming the field', async (_what, text, problem) => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['mutation ($i: LoginInput!) { login(input: $i) { accessToken } }', { i: { identifier: text, password: 'whatever it is' } }, 'identifier'],
      ['query ($u: String) { user(username: $u) { id } }', { u: text }, 'u'],
      ['query ($s: String) { users(search: $s) { totalCount } }', { s: text }, 's'],
      ['mutation ($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }', { i: { bio: text } }, 'bio'],
      ['mutation ($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }', { i: { settings: { theme: text } } }, 'settings.theme'],
      ['mutation ($i: CreateConversationInput!) { createConversation(input: $i) { id } }', { i: { kind: 'GROUP', title: text, participantIds: [] } }, 'title'],
    ];
    for (const [query, variables, field] of cases) {
      const result = await run(query, variables);
      expect({ field, code: codeOf(result), fields: result.errors![0].extensions.fields }).toEqual({ field, code: 'BAD_USER_INPUT', fields: { [field]: problem } });
    }
  });

  it('refuses a NUL written in the document, and a lone surrogate there does not parse', async () => {
    const nul = await run('{ user(username: "a\\u0000b") { id } }');
    expect(nul.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', fields: { username: 'must not contain NUL characters' } });
    expect(codeOf(await run('{ user(username: "a\ud800b") { id } }'))).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('refuses a settings object nested a thousand deep', async () => {
    let settings: unknown = 'bottom';
    for (let i = 0; i < 1000; i++) settings = { a: settings };
    const result = await run('mutation ($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }', { i: { settings } });
    expect(codeOf(result)).toBe('BAD_USER_INPUT');
    expect(result.errors![0].message).toMatch(/nested more than 32 levels/);
  });

  it.each(['users', 'conversations', 'publicConversations', 'calls'])('refuses first: -1 on %s, and cuts a huge first to its largest page', async (field) => {
    expect(codeOf(await run(`{ ${field}(first: -1) { edges { cursor } } }`))).toBe('BAD_USER_INPUT');
    const huge = await run(`{ ${field}(first: 1000000) { edges { cursor } } }`);
    expect(huge.errors ?? []).toEqual([]);
  });

  it('refuses first: -1 and last: -1 on messages', async () => {
    expect(codeOf(await run('query ($c: ID!) { messages(conversationId: $c, first: -1) { edges { cursor } } }', { c: conversationId }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await run('query ($c: ID!) { messages(conversationId: $c, last: -1) { edges { cursor } } }', { c: conversationId }))).toBe('BAD_USER_INPUT');
  });

  it('answers GET /graphql with variables that are not JSON with 400', async () => {
    const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ me { id } }')}&variables=%7B`, { headers: { authorization: `Bearer ${user.accessToken}` } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('answers bad ids in dialect paths and queries with the dialect’s 404 or 400', async () => {
    const flask = async (path: string) => (await fetch(`${server.url}/flask-chat${path}`, { headers: { authorization: `Bearer ${user.accessToken}` } })).status;
    for (const id of ['abc', '1e3', '-1', '2147483648', '99999999999999999999']) {
      for (const path of [`/api/users/${id}`, `/api/messages/private/${id}`, `/api/files/${id}`, `/api/files/public/${id}`]) {
        expect({ path, status: await flask(path) }).toEqual({ path, status: 404 });
      }
      expect({ id, status: (await fetch(`${server.url}/flask-chat/api/messages/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${user.accessToken}` } })).status }).toEqual({ id, status: 404 });
      for (const name of ['before', 'after']) {
        const res = await fetch(`${server.url}/chattrix/api/conversations/${conversationId}/messages?${name}=${id}`, { headers: { authorization: `Bearer ${user.accessToken}` } });
        expect({ name, id, status: res.status }).toEqual({ name, id, status: 400 });
      }
    }
  });

  it('answers NUL and lone surrogates on dialect routes with the dialect’s 400', async () => {
    const call = (path: string, method: string, body: unknown) =>
      fetch(`${server.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}`, 'x-requested-with': 'fetch' },
        body: JSON.stringify(body),
      });
    for (const text of ['a\u0000b', 'a\ud800b']) {
      expect((await call('/chattrix/api/user/profile', 'PUT', { bio: text })).status).toBe(400);
      expect((await call('/chattrix/api/user/profile', 'PUT', { settings: { theme: text } })).status).toBe(400);
      expect((await call('/chattrix/api/subscribe', 'POST', { subscription: { endpoint: `https://push.example/${text}`, keys: { p256dh: text, auth: 'x' } } })).status).toBe(400);
      expect((await call('/chattrix/api/subscribe', 'DELETE', { endpoint: text })).status).toBe(400);
      // socket-chat's seed (FastAPI) answers refused input with 422.
      expect((await call('/socket-chat/api/conversations/start', 'POST', { to_email: text })).status).toBe(422);
    }
  });
});

describe('cross-origin answers and the limits on sign-up and sign-in', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ CORS_ORIGINS: 'https://app.example', RATE_LIMITS: 'on', TRUST_PROXY: 'true' });
  });
  afterAll(() => server?.stop());

  it('allows credentials on /graphql only for origins CORS_ORIGINS names', async () => {
    const ask = (origin: string) => fetch(`${server.url}/graphql`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' });
    const listed = await ask('https://app.example');
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(listed.headers.get('access-control-allow-credentials')).toBe('true');
    // The answer depends on the Origin, so a shared cache must keep answers apart by it.
    expect(listed.headers.get('vary')).toMatch(/origin/i);
    const stranger = await ask('https://evil.example');
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
    expect(stranger.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('counts sign-ups and sign-ins per address, so accounts cannot be probed at scale', async () => {
    // An address of this run's own: with Redis, counts are shared with every other server and run.
    const address = `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    const from = { 'x-forwarded-for': address };
    const register = (n: number) =>
      gql(server, Register, { input: { username: uniqueName('probe'), password: 'long enough password', email: `${uniqueName('probe')}${n}@example.com` } }, undefined, from);
    const codes: unknown[] = [];
    for (let n = 0; n < 21; n++) codes.push((await register(n)).errors?.[0]?.extensions?.code ?? 'OK');
    expect(codes.slice(0, 20).every((c) => c === 'OK')).toBe(true);
    expect(codes[20]).toBe('RATE_LIMITED');
    // The socket-chat email sign-in tells whether an address has a password, so it counts too.
    const emailLogin = await fetch(`${server.url}/socket-chat/api/auth/login`, { method: 'POST', headers: from, body: new URLSearchParams({ email: 'probe1@example.com' }) });
    expect(emailLogin.status).toBe(429);
  });
});
