import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, gql, signUp, type SignedUp } from './helpers/clients.ts';
import { directBetween, EditMessage, send } from './helpers/chat.ts';
import { Login } from './helpers/operations.ts';
import { spawnServer } from './helpers/process.ts';
import { databaseOfItsOwn, freshDatabase, startServer, uniqueName, usingServices, type TestServer } from './helpers/server.ts';
import { OutboundPolicy } from '../src/lib/outbound-http.ts';

const CreateWebhook = graphql(`
  mutation CreateWebhook($input: WebhookInput!) {
    createWebhook(input: $input) {
      id
      url
      events
      active
    }
  }
`);
const UpdateWebhook = graphql(`
  mutation UpdateWebhook($id: ID!, $input: WebhookUpdateInput!) {
    updateWebhook(id: $id, input: $input) {
      id
      active
    }
  }
`);
const Deliveries = graphql(`
  query WebhookDeliveries($webhookId: ID!) {
    webhookDeliveries(webhookId: $webhookId, first: 50) {
      edges {
        node {
          id
          event
          status
          attempts
          statusCode
          error
        }
      }
    }
  }
`);
const DeadDeliveries = graphql(`
  query DeadDeliveries {
    deadDeliveries(consumer: "webhook", first: 50) {
      edges {
        node {
          id
          status
          attempts
        }
      }
    }
  }
`);
const Replay = graphql(`
  mutation ReplayDelivery($id: ID!) {
    replayDelivery(id: $id) {
      id
      status
    }
  }
`);

const Rename = graphql(`
  mutation RenameForWebhook($input: UpdateProfileInput!) {
    updateProfile(input: $input) {
      id
    }
  }
`);

const SECRET = 'a webhook secret of some length';

interface Received {
  event: string;
  delivery: string;
  signature: string;
  raw: string;
  body: { event: string; data: Record<string, unknown>; timestamp: string };
}

/**
 * A webhook receiver on a free loopback port, as an integrator runs one: it records every POST
 * and answers with what `answer` says for it (a status, or 'hang' to never answer).
 */
async function startReceiver() {
  const received: Received[] = [];
  const waiting: Array<() => void> = [];
  let answer: (r: Received) => number | 'hang' = () => 200;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const r: Received = {
        event: String(req.headers['x-chatrix-event']),
        delivery: String(req.headers['x-chatrix-delivery']),
        signature: String(req.headers['x-chatrix-signature']),
        raw,
        body: JSON.parse(raw),
      };
      received.push(r);
      waiting.splice(0).forEach((wake) => wake());
      const status = answer(r);
      if (status !== 'hang') res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    answerWith(f: typeof answer) {
      answer = f;
    },
    /**
     * Resolves with the requests `mine` picks once there are `count` of them (or fails after
     * `ms`). Against the shared PostgreSQL other suites' events arrive too: each test picks its own.
     */
    async requests(count: number, mine: (r: Received) => boolean, ms = 15_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const picked = received.filter(mine);
        if (picked.length >= count) return picked;
        if (Date.now() > deadline) throw new Error(`${picked.length} of ${count} webhook requests within ${ms} ms`);
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined),
    server,
  };
}

const settings = {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_TIMEOUT: '1',
  OUTBOX_RETRY_BASE: '0.05',
  OUTBOX_POLL: '1',
};

describe('webhooks', () => {
  const admin = { username: uniqueName('hookadmin'), password: 'admin password 1' };
  let server: TestServer;
  let adminToken: string;
  let alice: SignedUp;
  let bob: SignedUp;
  let database: Awaited<ReturnType<typeof databaseOfItsOwn>>;
  beforeAll(async () => {
    // Against PostgreSQL, a database of its own: another suite's server would claim these
    // deliveries and, not allowing private targets, fail them.
    database = await databaseOfItsOwn();
    server = await startServer({
      ...settings,
      ...database.env,
      OUTBOX_MAX_ATTEMPTS: '3',
      ADMIN_USERNAME: admin.username,
      ADMIN_PASSWORD: admin.password,
    });
    const login = await gql(server, Login, { input: { identifier: admin.username, password: admin.password } });
    adminToken = login.data!.login.accessToken;
    [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
  });
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  const create = (input: { url: string; events: string[]; secret?: string }, token = adminToken) =>
    gql(server, CreateWebhook, { input: { secret: SECRET, ...input } }, token);

  it('refuses a bad URL, a private address, a short secret, an unknown event, and a non-admin, naming the field', async () => {
    const field = (r: Awaited<ReturnType<typeof create>>) => Object.keys(r.errors?.[0]?.extensions?.fields ?? {});
    for (const url of ['ftp://example.com/hook', 'not a url', 'http://169.254.169.254/latest', 'http://0.0.0.0/', 'http://[fe80::1]/', 'http://user:pw@example.com/']) {
      const refused = await create({ url, events: ['message.created'] });
      expect(code(refused), url).toBe('BAD_USER_INPUT');
      expect(field(refused), url).toEqual(['url']);
    }
    const short = await create({ url: 'http://127.0.0.1:9/hook', events: ['message.created'], secret: 'short' });
    expect(field(short)).toEqual(['secret']);
    const unknown = await create({ url: 'http://127.0.0.1:9/hook', events: ['message.exploded'] });
    expect(field(unknown)).toEqual(['events']);
    expect(code(await create({ url: 'http://127.0.0.1:9/hook', events: ['message.created'] }, alice.accessToken))).toBe('FORBIDDEN');
  });

  it('refuses private, loopback, link-local and mapped addresses unless allowed, when registered and when connecting', async () => {
    const strict = new OutboundPolicy(false, []);
    for (const address of ['10.1.2.3', '127.0.0.1', '::1', '169.254.169.254', '::ffff:127.0.0.1', 'fd00::1', '0.0.0.0', '100.64.0.1']) {
      expect(strict.refusal(address), address).not.toBeNull();
    }
    expect(strict.refusal('93.184.216.34')).toBeNull();
    expect(await strict.checkUrl('http://localhost:9/hook')).toMatch(/loopback/);
    await expect(strict.post('http://localhost:9/hook', '{}', {}, 1000)).rejects.toThrow(/Refused/);
    const onPremises = new OutboundPolicy(true, ['169.254.10.0/24']);
    expect(onPremises.refusal('10.1.2.3')).toBeNull();
    expect(onPremises.refusal('169.254.10.7')).toBeNull();
    expect(onPremises.refusal('169.254.169.254')).toMatch(/linkLocal/);
  });

  it('POSTs each event signed, in the seed format, in order, once per delivery id, after the receiver was down', async () => {
    const receiver = await startReceiver();
    const id = await directBetween(server, alice, bob);
    const mine = (r: Received) => r.body.data.conversation_id === id;
    // Down for its first two requests of this conversation (answering 500), then up: the first
    // delivery is tried three times (within OUTBOX_MAX_ATTEMPTS), and the others wait for it.
    let failures = 0;
    receiver.answerWith((r) => (mine(r) && failures++ < 2 ? 500 : 200));
    const hook = (await create({ url: receiver.url, events: ['message.created', 'message.updated'] })).data!.createWebhook;
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await send(server, alice, id, text));
    await gql(server, EditMessage, { id: sent[0].id, content: 'one, edited' }, alice.accessToken);

    const all = await receiver.requests(2 + 4, mine);
    const ok = all.slice(2);
    // Each delivery's retries carry the same id and the same bytes; the successes are in order.
    expect(ok.map((r) => r.body.event)).toEqual(['message.created', 'message.created', 'message.created', 'message.updated']);
    expect(ok.map((r) => r.body.data.content)).toEqual(['one', 'two', 'three', 'one, edited']);
    expect(new Set(ok.map((r) => r.delivery)).size).toBe(4);
    for (const failed of all.slice(0, 2)) expect(ok.find((r) => r.delivery === failed.delivery)?.raw).toBe(failed.raw);
    for (const r of ok) {
      expect(r.signature).toBe(createHmac('sha256', SECRET).update(r.raw).digest('hex'));
      expect(r.event).toBe(r.body.event);
    }
    expect(ok[0].body).toEqual({
      event: 'message.created',
      data: expect.objectContaining({ id: sent[0].id, conversation_id: id, sender_id: alice.id, content: 'one', type: 'text', created_at: sent[0].createdAt }),
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const log = await gql(server, Deliveries, { webhookId: hook.id }, adminToken);
    const deliveries = log.data!.webhookDeliveries.edges.map((e) => e.node).filter((d) => ok.some((r) => r.delivery === d.id));
    expect(deliveries.map((d) => d.status)).toEqual(['DELIVERED', 'DELIVERED', 'DELIVERED', 'DELIVERED']);
    expect(deliveries.map((d) => d.attempts).sort()).toEqual([1, 1, 1, 3]);
    await gql(server, UpdateWebhook, { id: hook.id, input: { active: false } }, adminToken);
    await receiver.close();
  });

  it('times out a receiver that hangs and retries it, while another webhook gets its events at once', async () => {
    const hanging = await startReceiver();
    hanging.answerWith(() => 'hang');
    const healthy = await startReceiver();
    const slow = (await create({ url: hanging.url, events: ['user.updated'] })).data!.createWebhook;
    const fast = (await create({ url: healthy.url, events: ['user.updated'] })).data!.createWebhook;
    const carol = await signUp(server);
    await gql(server, Rename, { input: { displayName: 'Carol C.' } }, carol.accessToken);
    const carols = (r: Received) => r.body.data.id === carol.id;
    const [got] = await healthy.requests(1, carols);
    expect(got.body).toMatchObject({ event: 'user.updated', data: { id: carol.id, display_name: 'Carol C.' } });
    // The hanging receiver is tried again after each 1 s timeout, up to OUTBOX_MAX_ATTEMPTS.
    await hanging.requests(2, carols);
    const log = await gql(server, Deliveries, { webhookId: slow.id }, adminToken);
    expect(log.data!.webhookDeliveries.edges.map((e) => e.node.error)).toContainEqual(expect.stringMatching(/No answer within 1 s/));
    for (const hook of [slow, fast]) await gql(server, UpdateWebhook, { id: hook.id, input: { active: false } }, adminToken);
    hanging.server.closeAllConnections();
    await Promise.all([hanging.close(), healthy.close()]);
  });

  it('records bans, unbans and account deletions with their change, for the consumers', async () => {
    const BanUser = graphql(`
      mutation BanForOutbox($id: ID!) {
        banUser(id: $id) {
          id
        }
      }
    `);
    const UnbanUser = graphql(`
      mutation UnbanForOutbox($id: ID!) {
        unbanUser(id: $id) {
          id
        }
      }
    `);
    const gus = await signUp(server);
    await gql(server, BanUser, { id: gus.id }, adminToken);
    await gql(server, UnbanUser, { id: gus.id }, adminToken);
    const { rows } = await server.app.services.sql.query<{ type: string; payload: { id: number; username: string } }>(
      `SELECT type, payload FROM "OutboxEvent" WHERE topic = $1 ORDER BY id`,
      [`user:${gus.id}`],
    );
    expect(rows.map((r) => r.type)).toEqual(['user.registered', 'user.banned', 'user.unbanned']);
    expect(rows[1].payload).toMatchObject({ id: Number(gus.id), username: gus.username });
  });

  it('gives up after OUTBOX_MAX_ATTEMPTS, lists the dead delivery, and replays it with the same id', async () => {
    const receiver = await startReceiver();
    let up = false;
    receiver.answerWith(() => (up ? 204 : 503));
    const hook = (await create({ url: receiver.url, events: ['user.updated'] })).data!.createWebhook;
    const dave = await signUp(server);
    await gql(server, Rename, { input: { bio: 'dead letter' } }, dave.accessToken);
    const daves = (r: Received) => r.body.data.id === dave.id;
    const tries = await receiver.requests(3, daves);
    const deliveryId = tries[0].delivery;
    // The third failure makes it dead; wait until the log says so.
    const deadline = Date.now() + 10_000;
    let dead;
    do {
      dead = (await gql(server, DeadDeliveries, {}, adminToken)).data!.deadDeliveries.edges.find((e) => e.node.id === deliveryId);
    } while (!dead && Date.now() < deadline);
    expect(dead?.node).toMatchObject({ status: 'DEAD', attempts: 3 });
    // /health shows each consumer's backlog and dead letters; /health/live only that it runs.
    const health = (await (await fetch(`${server.url}/health`)).json()) as { consumers: Record<string, { pending: number; dead: number }> };
    expect(health.consumers.webhook.dead).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    up = true;
    expect((await gql(server, Replay, { id: deliveryId }, adminToken)).data!.replayDelivery.status).toBe('PENDING');
    const [, , , again] = await receiver.requests(4, daves);
    expect(again.delivery).toBe(deliveryId);
    expect(again.raw).toBe(tries[0].raw);
    await gql(server, UpdateWebhook, { id: hook.id, input: { active: false } }, adminToken);
    await receiver.close();
  });
});

describe.runIf(usingServices)('webhooks when an instance dies after its commit', () => {
  it('are delivered by another instance', async () => {
    const admin = { username: uniqueName('hookadmin'), password: 'admin password 1' };
    const database = await freshDatabase();
    const env = { ...settings, DATABASE_URL: database.url, ADMIN_USERNAME: admin.username, ADMIN_PASSWORD: admin.password };
    const receiver = await startReceiver();
    // Down while the first instance runs: its deliveries stay pending when it is killed.
    let up = false;
    receiver.answerWith(() => (up ? 200 : 503));
    const doomed = await spawnServer(env);
    const survivor = await startServer(env);
    try {
      const token = (await gql(doomed, Login, { input: { identifier: admin.username, password: admin.password } })).data!.login.accessToken;
      await gql(doomed, CreateWebhook, { input: { url: receiver.url, events: ['message.created'], secret: SECRET } }, token);
      const [erin, frank] = await Promise.all([signUp(doomed), signUp(doomed)]);
      const id = await directBetween(doomed, erin, frank);
      const sent = await send(doomed, erin, id, 'committed, then the instance died');
      const mine = (r: Received) => r.body.data.id === sent.id;
      await receiver.requests(1, mine);
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      up = true;
      const delivered = (await receiver.requests(2, mine, 20_000)).at(-1)!;
      expect(delivered.body.data).toMatchObject({ id: sent.id, content: 'committed, then the instance died' });
    } finally {
      doomed.child.kill('SIGKILL');
      await survivor.stop();
      await receiver.close();
      await database.drop();
    }
  });
});
