import pg from 'pg';
import { gql, type SignedUp } from '../helpers/clients.ts';
import { CreateConversation } from '../helpers/chat.ts';
import type { Cluster, Instance } from './instances.ts';
import type { PrivatePostgres, PrivateRedis } from './services.ts';
import { delay, prng, Sender, Subscriber, Tally } from './traffic.ts';

// One scenario: a conversation, live subscribers on both instances, senders alternating
// instances; a fault injected mid-traffic; then the outcome compared with the database.

export interface World {
  seed: number;
  redis: PrivateRedis;
  postgres: PrivatePostgres;
  cluster: Cluster;
  /** The first `SENDERS` send; all of them subscribe, on each instance. */
  users: SignedUp[];
}

export interface Fault {
  /** Injects the fault and resolves once it is over (the service back, the instance gone). */
  inject(world: World, random: () => number): Promise<void>;
  /**
   * No sends after the fault: whatever subscribers missed must reach them without new traffic
   * (nothing then reveals a hole to the server's own gap filling).
   */
  quietAfter?: boolean;
}

const SENDERS = 3;
/** How long after the traffic ends every live subscriber must hold every stored message. */
export const COMPLETE_WITHIN_MS = 5_000;

export interface Report {
  stored: number;
  acknowledged: number;
  /** Acknowledged sends whose message is not stored (under that id, with that clientId). */
  acknowledgedNotStored: number;
  /** Stored messages no sender was acknowledged for. */
  storedNotAcknowledged: number;
  /** Sender + clientId pairs stored more than once (a retry stored a copy). */
  storedCopies: number;
  /** Stored seqs other than 1, 2, 3… (the contract: no gaps). */
  seqGaps: number;
  /** Over all subscribers: stored messages a subscriber does not hold at the deadline. */
  lost: number;
  /** Over all subscribers: a message received live twice. */
  duplicated: number;
  /** Over all subscribers: a live message whose seq was not above the ones before. */
  misordered: number;
  /** Milliseconds from the end of traffic until every subscriber was complete; null if not within the bound. */
  completeAfterMs: number | null;
  /** `extensions.code` of every error answered to a send. */
  sendErrorCodes: Record<string, number>;
  /** Sends that got no answer (connection refused or reset, our time limit). */
  sendTransportFailures: Record<string, number>;
  gaveUp: number;
  /** The longest a send took to be acknowledged, retries included (a send held up by an outage shows here). */
  slowestSendMs: number;
  /** Failed catch-up reads of the subscribers (they retry), by code. */
  catchUpFailures: Record<string, number>;
  /** Instances whose /metrics did not come back to idle (subscriptions, websockets) after the clients left. */
  leftoverSubscriptions: Record<string, { subscriptions: number; idle: number; websockets: number }>;
  subscribers: Record<string, { lost: number; live: number; caughtUp: number; sessions: number; endings: Record<string, number> }>;
  /** Error and fatal log lines of the instances during the scenario. */
  serverErrors: Record<string, number>;
  timings: { trafficMs: number; faultMs: number; totalMs: number };
}

/** Polls `check` until it holds or `deadline` passes; true if it held. */
export async function until(check: () => boolean | Promise<boolean>, deadline: number, every = 50): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await delay(every);
  }
}

/** Rejects naming `what` if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface StoredRow {
  id: number;
  seq: number;
  senderId: number;
  clientId: string | null;
}

/** The truth: the conversation's messages as PostgreSQL has them, read directly. */
async function storedMessages(databaseUrl: string, conversationId: string): Promise<{ rows: StoredRow[]; copies: number }> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const { rows } = await client.query<StoredRow>('SELECT id, seq, "senderId", "clientId" FROM "Message" WHERE "conversationId" = $1 ORDER BY seq', [Number(conversationId)]);
    const copies = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM "Message" WHERE "conversationId" = $1 AND "clientId" IS NOT NULL
       GROUP BY "senderId", "clientId" HAVING count(*) > 1) c`,
      [Number(conversationId)],
    );
    return { rows, copies: copies.rows[0].n };
  } finally {
    await client.end();
  }
}

/** Waits until each running instance is back to idle: no client sockets, only its own listener. */
async function leftovers(instances: Instance[], deadline: number): Promise<Report['leftoverSubscriptions']> {
  const left: Report['leftoverSubscriptions'] = {};
  await until(async () => {
    for (const key of Object.keys(left)) delete left[key];
    for (const instance of instances.filter((i) => i.alive)) {
      const m = await instance.metrics().catch(() => undefined);
      if (!m || m.subscriptions !== instance.baseline || m.websockets !== 0) {
        left[instance.name] = { subscriptions: m?.subscriptions ?? -1, idle: instance.baseline, websockets: m?.websockets ?? -1 };
      }
    }
    return Object.keys(left).length === 0;
  }, deadline, 100);
  return left;
}

export async function runScenario(world: World, index: number, fault: Fault): Promise<Report> {
  const began = Date.now();
  const random = prng(world.seed + index * 7919);
  const { cluster, users } = world;
  await cluster.ensure();
  for (const instance of cluster.instances) instance.errors.clear();

  const [owner, ...others] = users;
  const created = await gql(cluster.instances[0], CreateConversation, { input: { kind: 'GROUP', title: `fault scenario ${index}`, participantIds: others.map((u) => u.id) } }, owner.accessToken);
  if (!created.data) throw new Error(`createConversation failed: ${JSON.stringify(created.errors)}`);
  const conversationId = created.data.createConversation.id;

  const subscribers = users.flatMap((user, u) => [0, 1].map((home) => new Subscriber(`user${u}@${home}`, user, conversationId, cluster, home)));
  const senders = users.slice(0, SENDERS).map((user, i) => new Sender(i, user, conversationId, cluster, prng(Math.floor(random() * 2 ** 32))));
  try {
    await within(Promise.all(subscribers.map((s) => s.start())), 10_000, 'subscribers connected');
    // Traffic starts once every subscription is live on its server (the metrics count it),
    // so the first messages are not left to the subscribers' catch-up.
    const live = await until(async () => {
      const counts = await Promise.all(cluster.instances.map((i) => i.metrics()));
      return cluster.instances.every((instance, i) => counts[i].subscriptions >= instance.baseline + subscribers.filter((s) => s.instance === instance).length);
    }, Date.now() + 5_000);
    if (!live) throw new Error('subscriptions did not become live on the servers');

    const trafficStart = Date.now();
    const running = senders.map((s) => s.run());
    // Traffic before the fault: 1 to 2 s.
    await delay(1000 + random() * 1000);
    const faultStart = Date.now();
    await fault.inject(world, random);
    const faultEnd = Date.now();
    // Traffic after the fault (2 to 3 s), unless the scenario is about a quiet conversation.
    if (!fault.quietAfter) await delay(2000 + random() * 1000);
    senders.forEach((s) => s.stop());
    await within(Promise.all(running), 20_000, 'senders finished');
    const trafficEnd = Date.now();

    const { rows, copies } = await storedMessages(world.postgres.url, conversationId);
    const storedIds = rows.map((r) => r.id);
    const complete = (s: Subscriber) => storedIds.every((id) => s.held.has(id));
    // No more sends from here: each subscriber must complete through what the servers do.
    const completed = await until(() => subscribers.every(complete), trafficEnd + COMPLETE_WITHIN_MS);
    const completeAfterMs = completed ? Date.now() - trafficEnd : null;

    const acked = senders.flatMap((s) => [...s.acked].map(([clientId, a]) => ({ ...a, clientId, senderId: Number(s.user.id) })));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ackedKeys = new Set(acked.map((a) => `${a.senderId}/${a.clientId}`));
    const perSubscriber: Report['subscribers'] = {};
    for (const s of subscribers) {
      perSubscriber[s.name] = {
        lost: storedIds.filter((id) => !s.held.has(id)).length,
        live: s.live,
        caughtUp: s.caughtUp,
        sessions: s.sessions,
        endings: Object.fromEntries(s.endings),
      };
    }

    await Promise.all(subscribers.map((s) => s.stop()));
    const leftoverSubscriptions = await leftovers(cluster.instances, Date.now() + 5_000);

    const serverErrors = new Tally();
    for (const instance of cluster.instances) for (const [msg, n] of instance.errors) serverErrors.set(`${instance.name}: ${msg}`, n);
    return {
      stored: rows.length,
      acknowledged: acked.length,
      acknowledgedNotStored: acked.filter((a) => byId.get(a.id)?.clientId !== a.clientId).length,
      storedNotAcknowledged: rows.filter((r) => !ackedKeys.has(`${r.senderId}/${r.clientId}`)).length,
      storedCopies: copies,
      seqGaps: rows.filter((r, i) => r.seq !== i + 1).length,
      lost: Object.values(perSubscriber).reduce((n, s) => n + s.lost, 0),
      duplicated: subscribers.reduce((n, s) => n + s.liveDuplicates, 0),
      misordered: subscribers.reduce((n, s) => n + s.misordered, 0),
      completeAfterMs,
      sendErrorCodes: Object.fromEntries(senders.reduce((t, s) => t.merge(s.codes), new Tally())),
      sendTransportFailures: Object.fromEntries(senders.reduce((t, s) => t.merge(s.transport), new Tally())),
      gaveUp: senders.reduce((n, s) => n + s.gaveUp.length, 0),
      slowestSendMs: Math.max(0, ...acked.map((a) => a.ms)),
      catchUpFailures: Object.fromEntries(subscribers.reduce((t, s) => t.merge(s.catchUpFailures), new Tally())),
      leftoverSubscriptions,
      subscribers: perSubscriber,
      serverErrors: Object.fromEntries(serverErrors),
      timings: { trafficMs: trafficEnd - trafficStart, faultMs: faultEnd - faultStart, totalMs: Date.now() - began },
    };
  } finally {
    // A scenario that failed half-way still leaves no sender or socket behind.
    senders.forEach((s) => s.stop());
    await Promise.all(subscribers.map((s) => s.stop()));
  }
}

/** The report as a few lines: the totals, then only the subscribers and servers with something to say. */
export function describeReport(name: string, seed: number, r: Report): string {
  const lines = [
    `[faults] ${name} (seed ${seed}): stored ${r.stored}, acknowledged ${r.acknowledged}; lost ${r.lost}, duplicated ${r.duplicated} (+${r.storedCopies} stored copies), misordered ${r.misordered}; ` +
      `complete ${r.completeAfterMs === null ? `NOT within ${COMPLETE_WITHIN_MS} ms` : `${r.completeAfterMs} ms`} after traffic; ` +
      `traffic ${r.timings.trafficMs} ms, fault ${r.timings.faultMs} ms, scenario ${r.timings.totalMs} ms`,
    `  send errors ${JSON.stringify(r.sendErrorCodes)}, no answer ${JSON.stringify(r.sendTransportFailures)}, gave up ${r.gaveUp}, slowest send ${r.slowestSendMs} ms; ` +
      `catch-up reads failed ${JSON.stringify(r.catchUpFailures)}`,
  ];
  for (const [name, s] of Object.entries(r.subscribers)) {
    if (s.lost > 0 || s.sessions > 1 || s.caughtUp > 0 || Object.keys(s.endings).length > 0) lines.push(`  ${name}: lost ${s.lost}, live ${s.live}, caught up ${s.caughtUp}, sessions ${s.sessions}, endings ${JSON.stringify(s.endings)}`);
  }
  if (Object.keys(r.leftoverSubscriptions).length > 0) lines.push(`  not idle after clients left: ${JSON.stringify(r.leftoverSubscriptions)}`);
  for (const [msg, n] of Object.entries(r.serverErrors)) lines.push(`  server log ×${n}: ${msg}`);
  return lines.join('\n');
}
