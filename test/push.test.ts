import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboundPolicy } from '../src/lib/outbound-http.ts';
import { pushConsumer } from '../src/modules/push/consumer.ts';
import type { Delivery, OutboxEvent } from '../src/modules/outbox/consumer.ts';
import { graphql } from './generated/index.ts';
import { CreateConversation, directBetween, send } from './helpers/chat.ts';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type SignedUp } from './helpers/clients.ts';
import { Presence } from './helpers/operations.ts';
import { spawnServer, type ServerProcess } from './helpers/process.ts';
import { databaseOfItsOwn, startServer, uniqueName, type TestServer } from './helpers/server.ts';
import { decryptPush, PushService, readVapid, type BrowserSubscription, type PushRequest } from './helpers/push-service.ts';

const VapidPublicKey = graphql(`
  query VapidPublicKey {
    vapidPublicKey
  }
`);

const SavePushSubscription = graphql(`
  mutation SavePushSubscription($input: PushSubscriptionInput!) {
    savePushSubscription(input: $input)
  }
`);

const DeletePushSubscription = graphql(`
  mutation DeletePushSubscription($endpoint: String!) {
    deletePushSubscription(endpoint: $endpoint)
  }
`);

const SUBJECT = 'mailto:push-ops@chat.example';
const MESSAGE_TTL = 24 * 3600;

/**
 * Web push end to end: a server process (as `npm start` runs it) sends to a push service on this
 * machine, which checks each request as a browser vendor's does (VAPID, aes128gcm, TTL, Urgency)
 * and decrypts it with the keys only the "browser" holds. The push service is HTTPS (endpoints
 * must be), with a certificate made by the test; the server trusts it the way an operator would
 * trust a private CA: NODE_EXTRA_CA_CERTS. Loopback is a private address, which the outbound
 * policy refuses unless WEBHOOK_ALLOW_PRIVATE allows it.
 */
const pushService = new PushService();
let certDir: string;
let server: ServerProcess;
let vapidKey: string;
let env: Record<string, string>;
let database: Awaited<ReturnType<typeof databaseOfItsOwn>>;

beforeAll(async () => {
  await pushService.start();
  certDir = await mkdtemp(path.join(tmpdir(), 'push-ca-'));
  const caFile = path.join(certDir, 'push-service.pem');
  await writeFile(caFile, pushService.caPem);
  // Against PostgreSQL, a database of its own: other suites' servers would claim these
  // deliveries and fail them (they neither trust the push service nor allow private targets).
  database = await databaseOfItsOwn();
  env = { ...database.env, WEBHOOK_ALLOW_PRIVATE: 'true', OUTBOX_RETRY_BASE: '0.05', PUSH_SUBJECT: SUBJECT };
  server = await spawnServer({ ...env, NODE_EXTRA_CA_CERTS: caFile });
  const result = await gql(server, VapidPublicKey);
  vapidKey = result.data!.vapidPublicKey;
  expect(Buffer.from(vapidKey, 'base64url')).toHaveLength(65);
});

afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
  await pushService.stop();
  await rm(certDir, { recursive: true, force: true });
  await database?.drop();
});

/** A browser's subscription at the local push service, saved for `user` on `on`. */
async function subscribeBrowser(on: { url: string }, user: SignedUp): Promise<BrowserSubscription> {
  const sub = pushService.subscribe(uniqueName('sub'));
  const result = await gql(on, SavePushSubscription, { input: sub.input }, user.accessToken);
  expect(result.errors).toBeUndefined();
  return sub;
}

/** Checks `request` is a Web Push as RFC 8030, 8291 and 8292 have it, and returns what the browser reads. */
function open(request: PushRequest, sub: BrowserSubscription, urgency = 'normal', key = vapidKey): Record<string, unknown> {
  expect(request.headers['content-encoding']).toBe('aes128gcm');
  expect(request.headers.urgency).toBe(urgency);
  expect(Number(request.headers.ttl)).toBeGreaterThan(0);
  const vapid = readVapid(request);
  expect(vapid).not.toBeNull();
  expect(vapid!.key).toBe(key);
  expect(vapid!.signatureValid).toBe(true);
  expect(vapid!.claims.aud).toBe(pushService.audience);
  expect(vapid!.claims.exp).toBeGreaterThan(Date.now() / 1000);
  expect(vapid!.claims.exp).toBeLessThanOrEqual(Date.now() / 1000 + 24 * 3600);
  expect(vapid!.claims.sub).toBe(SUBJECT);
  return decryptPush(request, sub);
}

async function signUpNamed(displayName?: string) {
  return signUp(server, displayName ? { displayName } : {});
}

describe('web push of messages', () => {
  it('sends an offline member one push they can decrypt, and none to the sender', async () => {
    const alice = await signUpNamed('Alice Liddell');
    const bob = await signUpNamed();
    const bobSub = await subscribeBrowser(server, bob);
    const aliceSub = await subscribeBrowser(server, alice);
    const conversationId = await directBetween(server, alice, bob);

    const first = await send(server, alice, conversationId, 'hello bob');
    const request = await pushService.next(bobSub);
    expect(request.headers.ttl).toBe(String(MESSAGE_TTL));
    expect(open(request, bobSub)).toEqual({
      type: 'message',
      title: 'Alice Liddell',
      body: 'hello bob',
      tag: `conversation:${conversationId}`,
      userId: bob.id,
      conversationId,
      messageId: first.id,
      senderId: alice.id,
      kind: 'TEXT',
      createdAt: first.createdAt,
    });

    // The next push there is the next message (so the first came once), its body cut to 200 characters.
    const long = `${'x'.repeat(250)}`;
    const second = await send(server, alice, conversationId, long);
    const next = open(await pushService.next(bobSub), bobSub);
    expect(next.messageId).toBe(second.id);
    expect(next.body).toBe(`${'x'.repeat(199)}…`);

    // Bob's reply is the first push Alice's browser gets: none came for her own messages.
    const reply = await send(server, bob, conversationId, 'hi alice');
    const toAlice = open(await pushService.next(aliceSub), aliceSub);
    expect(toAlice).toMatchObject({ messageId: reply.id, title: bob.username, userId: alice.id });
  });

  it('names a group and its sender, and sends nothing for a public room', async () => {
    const alice = await signUpNamed('Alice');
    const bob = await signUpNamed();
    const carol = await signUpNamed();
    const [bobSub, carolSub] = [await subscribeBrowser(server, bob), await subscribeBrowser(server, carol)];
    const group = await gql(server, CreateConversation, { input: { kind: 'GROUP', title: 'Team', participantIds: [bob.id, carol.id] } }, alice.accessToken);
    const room = await gql(server, CreateConversation, { input: { kind: 'PUBLIC', title: uniqueName('Room'), participantIds: [bob.id] } }, alice.accessToken);
    const groupId = group.data!.createConversation.id;

    await send(server, alice, room.data!.createConversation.id, 'to the room');
    const message = await send(server, alice, groupId, 'hi team');
    for (const sub of [bobSub, carolSub]) {
      // The first push is the group's: the public room's message made none.
      expect(open(await pushService.next(sub), sub)).toMatchObject({ title: 'Team', body: 'Alice: hi team', messageId: message.id, conversationId: groupId });
    }
  });

  it('sends nothing to a member who is connected', async () => {
    const alice = await signUpNamed();
    const bob = await signUpNamed();
    const carol = await signUpNamed();
    const bobSub = await subscribeBrowser(server, bob);
    const carolSub = await subscribeBrowser(server, carol);
    const withBob = await directBetween(server, alice, bob);
    const withCarol = await directBetween(server, alice, carol);

    const bobOnline = connectWs(server, bob.accessToken);
    await bobOnline.connected;
    const aliceWs = connectWs(server, alice.accessToken);
    const presence = subscribe(aliceWs, Presence, { userIds: [bob.id] });
    expect((await nextEvent(presence, 'bob online')).data?.presence.isOnline).toBe(true);

    await send(server, alice, withBob, 'you are here');
    // Events are handed out in order: once Carol's later one reached her, Bob's was handed out, while he was online.
    const toCarol = await send(server, alice, withCarol, 'carol is away');
    expect(open(await pushService.next(carolSub), carolSub).messageId).toBe(toCarol.id);

    await bobOnline.client.dispose();
    expect((await nextEvent(presence, 'bob offline')).data?.presence.isOnline).toBe(false);
    const later = await send(server, alice, withBob, 'now you are away');
    // The first push Bob's browser gets is the one sent while he was away.
    expect(open(await pushService.next(bobSub), bobSub).messageId).toBe(later.id);
    await aliceWs.client.dispose();
  });

  it('deletes a subscription its push service says is gone (410), and keeps pushing to the others', async () => {
    const alice = await signUpNamed();
    const bob = await signUpNamed();
    const gone = await subscribeBrowser(server, bob);
    const kept = await subscribeBrowser(server, bob);
    pushService.answer(gone, 410, 410);
    const conversationId = await directBetween(server, alice, bob);

    const first = await send(server, alice, conversationId, 'one');
    const [toGone, toKept] = await Promise.all([pushService.next(gone), pushService.next(kept)]);
    expect(toGone.status).toBe(410);
    expect(open(toGone, gone).messageId).toBe(first.id);
    expect(open(toKept, kept).messageId).toBe(first.id);
    await server.logged(/subscription gone; removed/);

    // Gone: deleting it again finds nothing. The other is untouched and still gets pushes.
    expect(code(await gql(server, DeletePushSubscription, { endpoint: gone.input.endpoint }, bob.accessToken))).toBe('NOT_FOUND');
    const second = await send(server, alice, conversationId, 'two');
    expect(open(await pushService.next(kept), kept).messageId).toBe(second.id);
    expect(pushService.pending(gone)).toEqual([]);
    expect((await gql(server, DeletePushSubscription, { endpoint: kept.input.endpoint }, bob.accessToken)).data?.deletePushSubscription).toBe(true);
  });

  it('retries after a push service error and delivers once', async () => {
    const alice = await signUpNamed();
    const bob = await signUpNamed();
    const sub = await subscribeBrowser(server, bob);
    pushService.answer(sub, 500);
    const conversationId = await directBetween(server, alice, bob);

    const message = await send(server, alice, conversationId, 'try again');
    const failed = await pushService.next(sub);
    expect(failed.status).toBe(500);
    expect(open(failed, sub).messageId).toBe(message.id);
    const retried = await pushService.next(sub);
    expect(retried.status).toBe(201);
    expect(open(retried, sub).messageId).toBe(message.id);

    // Delivered: the next push is the next message, not a third try.
    const next = await send(server, alice, conversationId, 'and on');
    expect(open(await pushService.next(sub), sub).messageId).toBe(next.id);
  });
});

/**
 * The consumer driven directly, against a real database and presence (an in-process server)
 * and the same push service: `call.started` as the calls module records it, and the outbound policy.
 */
describe('the push consumer on its own', () => {
  /** A delivery's first try, as the relay hands it over. */
  const firstTry = (target: string, payload: Record<string, unknown>, event?: OutboxEvent): Delivery => ({
    id: 1, consumer: 'push', target, orderKey: event?.topic ?? 'conversation:1', eventId: event?.id ?? 1,
    event: event?.type ?? 'message.created', payload, attempts: 1, webhookId: null, createdAt: new Date(),
  });
  let local: TestServer;
  beforeAll(async () => {
    local = await startServer(env);
  });
  afterAll(async () => {
    await local?.stop();
  });

  it('rings an offline callee with an urgent push, and not a connected one', async () => {
    const consumer = pushConsumer(local.app.services, { ca: pushService.caPem });
    const alice = await signUp(local, { displayName: 'Alice' });
    const bob = await signUp(local);
    const sub = await subscribeBrowser(local, bob);
    const startedAt = new Date().toISOString();
    const event: OutboxEvent = {
      id: 1_000_000_000 + Math.floor(Math.random() * 1e6),
      type: 'call.started',
      topic: 'call:77',
      payload: { id: 77, kind: 'VIDEO', status: 'RINGING', callerId: Number(alice.id), calleeId: Number(bob.id), startedAt, answeredAt: null, endedAt: null },
      createdAt: new Date(),
    };
    const targetsOf = async () => {
      const client = await local.app.services.sql.connect();
      try {
        return await consumer.targets([event], client);
      } finally {
        client.release();
      }
    };

    const targets = (await targetsOf()).get(event.id) ?? [];
    expect(targets).toHaveLength(1);
    const [{ target, payload }] = targets;
    const outcome = await consumer.deliver(firstTry(target, payload!, event));
    expect(outcome).toEqual({ ok: true, statusCode: 201 });
    const request = await pushService.next(sub);
    const ttl = Number(request.headers.ttl);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(local.app.services.config.CALL_RING_TIMEOUT);
    expect(open(request, sub, 'high', (await gql(local, VapidPublicKey)).data!.vapidPublicKey)).toEqual({
      type: 'call', title: 'Alice', body: 'Incoming video call', tag: 'call:77', userId: bob.id,
      callId: '77', callerId: alice.id, kind: 'VIDEO', startedAt,
    });

    const online = connectWs(local, bob.accessToken);
    await online.connected;
    expect((await targetsOf()).get(event.id)).toBeUndefined();
    await online.client.dispose();
  });

  it('refuses endpoints on private addresses unless WEBHOOK_ALLOW_PRIVATE allows them', async () => {
    // The same services, with the policy of a server that allows no private network.
    const consumer = pushConsumer({ ...local.app.services, outbound: new OutboundPolicy(false, []) }, { ca: pushService.caPem });
    const bob = await signUp(local);
    const byAddress = await subscribeBrowser(local, bob);
    // The certificate names localhost too: only the policy stands in the way.
    const byName = pushService.subscribe(uniqueName('sub'));
    byName.input.endpoint = byName.input.endpoint.replace('127.0.0.1', 'localhost');
    await gql(local, SavePushSubscription, { input: byName.input }, bob.accessToken);
    const { rows } = await local.app.services.sql.query<{ id: number; endpoint: string }>(
      'SELECT id, endpoint FROM "PushSubscription" WHERE endpoint = ANY($1::text[])',
      [[byAddress.input.endpoint, byName.input.endpoint]],
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const outcome = await consumer.deliver(firstTry(String(row.id), { type: 'message', userId: bob.id }));
      expect(outcome).toMatchObject({ ok: false, final: true, error: expect.stringMatching(/^Refused: /) });
    }
    expect(pushService.pending(byAddress)).toEqual([]);
    expect(pushService.pending(byName)).toEqual([]);
  });

  it("ends a delivery whose subscription was deleted, or moved to another account, without pushing", async () => {
    const consumer = pushConsumer(local.app.services, { ca: pushService.caPem });
    const bob = await signUp(local);
    const carol = await signUp(local);
    const sub = await subscribeBrowser(local, bob);
    const { rows } = await local.app.services.sql.query<{ id: number }>('SELECT id FROM "PushSubscription" WHERE endpoint = $1', [sub.input.endpoint]);
    const deliver = (target: string) => consumer.deliver(firstTry(target, { type: 'message', userId: bob.id, body: 'for bob only' }));
    // The same browser signed in as Carol saves its subscription: it is hers now.
    await gql(local, SavePushSubscription, { input: sub.input }, carol.accessToken);
    expect(await deliver(String(rows[0].id))).toMatchObject({ ok: false, final: true, error: expect.stringMatching(/another account/) });
    await gql(local, DeletePushSubscription, { endpoint: sub.input.endpoint }, carol.accessToken);
    expect(await deliver(String(rows[0].id))).toEqual({ ok: false, final: true, error: 'subscription removed' });
    expect(pushService.pending(sub)).toEqual([]);
  });
});
