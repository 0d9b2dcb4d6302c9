// `npm run bench`: drives the server over graphql-ws with subscribers spread over
// conversations and senders posting to them, in the embedded mode and with PostgreSQL +
// Redis, and drives a bare `ws` relay (bench/reference-server.ts) the same way. Prints
// delivered events per second, send→receive latency, memory per idle connection, and the
// ratios to the reference. Sizes come from BENCH_* variables (defaults: the goals).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { spawnServer } from '../test/helpers/process.ts';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const CONVERSATIONS = Number(process.env.BENCH_CONVERSATIONS ?? 100);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 50);
const IDLE = Number(process.env.BENCH_IDLE_CONNECTIONS ?? 5000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** Messages per second per sender in the latency phase. */
const RATE = Number(process.env.BENCH_RATE ?? 4);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Which runs to make (comma-separated): reference, embedded, postgres. */
const RUNS = new Set((process.env.BENCH_RUNS ?? 'reference,embedded,postgres').split(','));

interface Result {
  name: string;
  deliveredPerSecond: number;
  /** CPU time of the server process (all its threads) per delivered event in the closed loop, µs. */
  cpuPerDelivery: number;
  /** Ours only: the same closed loop with each send a separate HTTP request. */
  deliveredPerSecondHttp?: number;
  p50: number;
  p95: number;
  p99: number;
  latencyDelivered: number;
  expectedDeliveries: number;
  bytesPerIdleConnection: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** What the subscribers record: each delivery's latency, and how many arrived. */
interface Stats {
  latencies: number[];
  delivered: number;
}

/** Starts a phase's counting afresh. */
function resetStats(stats: Stats) {
  stats.latencies.length = 0;
  stats.delivered = 0;
}

/** User + system CPU seconds the process has used so far (all threads). */
async function cpuSecondsOf(child: ChildProcess): Promise<number> {
  const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, counted in ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function rssOf(child: ChildProcess): Promise<number> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Senders post for SECONDS: at RATE per second each (paced), or as fast as answers come (closed). */
async function drive(senders: Array<() => Promise<void>>, paced: boolean) {
  const deadline = Date.now() + SECONDS * 1000;
  let sent = 0;
  await Promise.all(senders.map(async (sendOne, i) => {
    if (paced) await sleep((1000 / RATE) * (i / senders.length));
    while (Date.now() < deadline) {
      const started = Date.now();
      await sendOne();
      sent++;
      if (paced) await sleep(Math.max(0, 1000 / RATE - (Date.now() - started)));
    }
  }));
  return sent;
}

/** Closed-loop sends for SECONDS: delivered events per second at the subscribers. */
async function throughput(senders: Array<() => Promise<void>>, stats: Stats, server: ChildProcess) {
  resetStats(stats);
  const started = Date.now();
  const cpuBefore = await cpuSecondsOf(server);
  await drive(senders, false);
  const cpuMicrosPerDelivery = Math.round((((await cpuSecondsOf(server)) - cpuBefore) * 1e6) / stats.delivered);
  const perSecond = Math.round(stats.delivered / ((Date.now() - started) / 1000));
  await sleep(1000);
  return { perSecond, cpuMicrosPerDelivery };
}

/**
 * One message to every conversation, awaited at every subscriber, before anything is measured:
 * a subscription counts as soon as it listens, while its start-up reads may still be queued,
 * and the measured phases are about the steady state, not about 1,000 clients arriving at once.
 */
async function warmUp(senders: Array<() => Promise<void>>, stats: Stats) {
  const rounds = Math.ceil(CONVERSATIONS / senders.length);
  await Promise.all(senders.map(async (sendOne) => {
    for (let i = 0; i < rounds; i++) await sendOne();
  }));
  const deadline = Date.now() + 60_000;
  while (stats.delivered < SUBSCRIBERS) {
    if (Date.now() > deadline) throw new Error(`warm-up: ${stats.delivered} of ${SUBSCRIBERS} subscribers heard their conversation`);
    await sleep(50);
  }
  resetStats(stats);
}

/** Two phases: paced sends for latency, then closed-loop sends for throughput. */
async function measure(
  name: string,
  senders: Array<() => Promise<void>>,
  stats: Stats,
  fanOut: number,
  server: ChildProcess,
): Promise<Omit<Result, 'bytesPerIdleConnection'>> {
  await warmUp(senders, stats);
  const sentPaced = await drive(senders, true);
  await sleep(1000);
  const latencies = [...stats.latencies].sort((a, b) => a - b);
  const latencyDelivered = stats.delivered;
  const { perSecond: deliveredPerSecond, cpuMicrosPerDelivery: cpuPerDelivery } = await throughput(senders, stats, server);
  return {
    name,
    deliveredPerSecond,
    cpuPerDelivery,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    latencyDelivered,
    expectedDeliveries: sentPaced * fanOut,
  };
}

async function ours(name: string, env: Record<string, string>): Promise<Result> {
  // As deployed (the Dockerfile sets it): graphql-js skips its development-only checks.
  const server = await spawnServer({ ...env, NODE_ENV: 'production', LOG_LEVEL: 'info', PRESENCE_TTL: '30' });
  const post = async (query: string, variables: unknown, token?: string) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const register = (username: string) =>
    post('mutation ($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }', {
      i: { username, password: 'benchmark password' },
    }).then((d) => ({ token: d.register.accessToken as string, id: d.register.user.id as string }));

  const tag = Math.random().toString(36).slice(2, 8);
  const subscribers = await mapLimit(Array.from({ length: SUBSCRIBERS }), 16, (_, i) => register(`b${tag}_s${i}`));
  const senders = await mapLimit(Array.from({ length: SENDERS }), 16, (_, i) => register(`b${tag}_w${i}`));
  const perConversation = Math.ceil(SUBSCRIBERS / CONVERSATIONS);
  const conversations = await mapLimit(Array.from({ length: CONVERSATIONS }), 16, async (_, c) => {
    const owner = senders[c % SENDERS];
    const members = subscribers.slice(c * perConversation, (c + 1) * perConversation).map((u) => u.id);
    const extra = senders.filter((_, s) => s !== c % SENDERS && s % CONVERSATIONS === c % CONVERSATIONS).map((u) => u.id);
    const d = await post('mutation ($i: CreateConversationInput!) { createConversation(input: $i) { id } }', {
      i: { kind: 'GROUP', title: `bench ${c}`, participantIds: [...members, ...extra] },
    }, owner.token);
    return { id: d.createConversation.id as string, owner };
  });

  // Memory first, while the process holds little garbage from the load phases.
  const before = await rssOf(server.child);
  const idle: Client[] = [];
  await mapLimit(Array.from({ length: IDLE }), 100, async (_, i) => {
    const user = subscribers[i % subscribers.length];
    await new Promise<void>((resolve) => {
      const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${user.token}` }, lazy: false, retryAttempts: 0, on: { connected: () => resolve() } });
      idle.push(client);
      client.subscribe({ query: 'subscription { userEvents { __typename } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
  });
  await sleep(2000);
  const bytesPerIdleConnection = Math.round(((await rssOf(server.child)) - before) / IDLE);
  await Promise.all(idle.map((c) => c.dispose()));
  const metrics = async () => (await (await fetch(`${server.url}/metrics`)).json()) as { subscriptions: number; websockets: number };
  while ((await metrics()).websockets > 0) await sleep(100);
  const baseline = (await metrics()).subscriptions;

  const stats: Stats = { latencies: [], delivered: 0 };
  const clients: Client[] = [];
  await mapLimit(subscribers, 50, async (user, i) => {
    const conversationId = conversations[Math.floor(i / perConversation)].id;
    const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${user.token}` }, lazy: false, retryAttempts: 0 });
    clients.push(client);
    client.subscribe(
      { query: `subscription ($c: ID!) { conversationEvents(conversationId: $c) { __typename ... on MessageAddedEvent { message { id content createdAt sender { id username } } } } }`, variables: { c: conversationId } },
      {
        next: (r: any) => {
          const message = r.data?.conversationEvents?.message;
          if (!message) return;
          stats.delivered++;
          stats.latencies.push(Date.now() - Number(message.content));
        },
        error: () => {},
        complete: () => {},
      },
    );
  });
  while ((await metrics()).subscriptions < baseline + SUBSCRIBERS) await sleep(100);

  // Senders keep one graphql-ws connection each and send mutations over it, as the
  // reference's senders keep one socket; the HTTP variant is measured after.
  const sendMutation = 'mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }';
  const senderSockets = senders.map((sender) => createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${sender.token}` }, lazy: false, retryAttempts: 0 }));
  const sendFns = (over: 'ws' | 'http') => senders.map((sender, s) => {
    const mine = conversations.filter((_, c) => c % SENDERS === s);
    let turn = 0;
    return () => {
      const variables = { i: { conversationId: mine[turn++ % mine.length].id, content: String(Date.now()) } };
      if (over === 'http') return post(sendMutation, variables, sender.token).then(() => undefined);
      return new Promise<void>((resolve, reject) => {
        senderSockets[s].subscribe({ query: sendMutation, variables }, {
          next: (r) => r.errors && reject(new Error(JSON.stringify(r.errors))),
          error: reject,
          complete: resolve,
        });
      });
    };
  });
  const measured = await measure(name, sendFns('ws'), stats, perConversation, server.child);
  const { perSecond: deliveredPerSecondHttp } = await throughput(sendFns('http'), stats, server.child);
  await Promise.all([...clients, ...senderSockets].map((c) => c.dispose()));

  server.child.kill('SIGTERM');
  await server.exited;
  return { ...measured, deliveredPerSecondHttp, bytesPerIdleConnection };
}

async function reference(): Promise<Result> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/reference-server.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => resolve(JSON.parse(line).url));
  });
  const wsUrl = url.replace('http', 'ws');
  const open = (room: string, onMessage?: (data: any) => void) =>
    new Promise<WebSocket>((resolve) => {
      const socket = new WebSocket(wsUrl);
      socket.on('open', () => socket.send(JSON.stringify({ type: 'join', room })));
      socket.on('message', (raw) => {
        const data = JSON.parse(String(raw));
        if (data.type === 'joined') resolve(socket);
        else onMessage?.(data);
      });
    });
  const perConversation = Math.ceil(SUBSCRIBERS / CONVERSATIONS);
  const before = await rssOf(child);
  const idle = await mapLimit(Array.from({ length: IDLE }), 100, (_, i) => open(`idle${i % CONVERSATIONS}`));
  await sleep(2000);
  const bytesPerIdleConnection = Math.round(((await rssOf(child)) - before) / IDLE);
  for (const s of idle) s.close();
  const stats: Stats = { latencies: [], delivered: 0 };
  const subscribers = await mapLimit(Array.from({ length: SUBSCRIBERS }), 100, (_, i) =>
    open(`room${Math.floor(i / perConversation)}`, (data) => {
      stats.delivered++;
      stats.latencies.push(Date.now() - Number(data.payload.content));
    }),
  );
  const sendFns = await mapLimit(Array.from({ length: SENDERS }), 50, async (_, s) => {
    const rooms = Array.from({ length: CONVERSATIONS }, (_, c) => c).filter((c) => c % SENDERS === s);
    const socket = await open(`sender${s}`);
    let turn = 0;
    let acked: (() => void) | undefined;
    socket.on('message', (raw) => String(raw).includes('"ack"') && acked?.());
    return () =>
      new Promise<void>((resolve) => {
        acked = resolve;
        const room = `room${rooms[turn++ % rooms.length]}`;
        // The same payload shape our subscribers receive, so both relay comparable JSON.
        socket.send(JSON.stringify({ type: 'send', room, payload: { id: String(turn), content: String(Date.now()), createdAt: new Date().toISOString(), sender: { id: String(s), username: `w${s}` } } }));
      });
  });
  const measured = await measure('reference ws relay', sendFns, stats, perConversation, child);
  for (const s of subscribers) s.close();
  child.kill('SIGTERM');
  return { ...measured, bytesPerIdleConnection };
}

async function freshDatabase(): Promise<string | null> {
  const admin = new pg.Client({ connectionString: PG_URL });
  try {
    await admin.connect();
    const name = `bench_${Date.now()}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    return url.toString();
  } catch {
    return null;
  } finally {
    await admin.end().catch(() => {});
  }
}

/** Left behind, each run's database would give PostgreSQL's autovacuum more to do in the next. */
async function dropDatabase(databaseUrl: string) {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${new URL(databaseUrl).pathname.slice(1)} WITH (FORCE)`);
  await admin.end();
}

const results: Result[] = [];
console.log(`subscribers ${SUBSCRIBERS} over ${CONVERSATIONS} conversations, ${SENDERS} senders, ${SECONDS}s per phase, ${RATE} msg/s per sender when paced, ${IDLE} idle connections`);
// The reference runs again right before each of our modes: this shared machine's speed drifts
// by a third within minutes, and a ratio means most when both sides ran at the same time.
const withReference = async (run: () => Promise<Result>) => {
  if (RUNS.has('reference')) results.push(await reference());
  results.push(await run());
};
if (RUNS.has('embedded')) await withReference(() => ours('ours: embedded (PGlite, in-process)', {}));
if (RUNS.has('postgres')) {
  const databaseUrl = await freshDatabase();
  if (databaseUrl) {
    await withReference(() => ours('ours: PostgreSQL + Redis', { DATABASE_URL: databaseUrl, REDIS_URL }));
    await dropDatabase(databaseUrl);
  } else console.log(`(PostgreSQL at ${PG_URL} not reachable: the PostgreSQL + Redis run is left out)`);
}
// Asked for the reference alone (or PostgreSQL was not reachable): it still runs once.
if (RUNS.has('reference') && results.length === 0) results.push(await reference());

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
console.log('');
console.log('| run | delivered/s | ratio to reference | server CPU per delivery | delivered/s, sends over HTTP | ratio | p50 ms | p95 ms | p99 ms | delivered (paced) | memory per idle connection |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
// Each of our rows is compared with the reference run just before it.
let ref = results[0];
for (const r of results) {
  if (r.name.startsWith('reference')) ref = r;
  const ratio = (n: number | undefined) => (n === undefined ? '–' : (n / ref.deliveredPerSecond).toFixed(2));
  console.log(`| ${r.name} | ${r.deliveredPerSecond} | ${ratio(r.deliveredPerSecond)} | ${r.cpuPerDelivery} µs | ${r.deliveredPerSecondHttp ?? '–'} | ${ratio(r.deliveredPerSecondHttp)} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.latencyDelivered}/${r.expectedDeliveries} | ${kb(r.bytesPerIdleConnection)} |`);
}
process.exit(0);
