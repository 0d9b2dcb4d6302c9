// `npm run bench:sends`: the server CPU one message send costs, alone: N sendMessage mutations
// over one graphql-ws socket, 50 in flight, nobody subscribed. For A/B runs of a change on the
// send path (run it in both checkouts, alternating): `npm run bench` mixes in the fan-out and
// swings more on this shared machine. BENCH_SENDS sends per round (6000), three rounds after a
// warm-up; run on the embedded database unless DATABASE_URL is set.
import { readFileSync } from 'node:fs';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { spawnServer } from '../test/helpers/process.ts';
const N = Number(process.env.BENCH_SENDS ?? 6000);
const proc = await spawnServer();
const cpu = () => { const f = readFileSync(`/proc/${proc.child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; }; // utime + stime, in 10 ms clock ticks: ms
const post = async (query: string, variables: unknown, token?: string) => (await (await fetch(`${proc.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ query, variables }) })).json()) as any;
const reg = async (u: string) => (await post('mutation($i: RegisterInput!){ register(input:$i){ accessToken user { id } } }', { i: { username: u, password: 'long enough pw' } })).data.register;
const run_ = Date.now().toString(36);
const a = await reg(`alice_${run_}`); const b = await reg(`bob_${run_}`);
const conv = (await post('mutation($u: ID!){ ensureDirectConversation(userId:$u){ id } }', { u: b.user.id }, a.accessToken)).data.ensureDirectConversation.id;
const client = createClient({ url: proc.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${a.accessToken}` } });
const send = (i: number) => new Promise<void>((resolve, reject) => client.subscribe({ query: 'mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id } }', variables: { i: { conversationId: conv, content: `m${i}` } } }, { next() {}, error: reject, complete: resolve }));
const run = async (n: number) => { let next = 0; await Promise.all(Array.from({ length: 50 }, async () => { while (next < n) await send(next++); })); };
await run(1000); // warm
for (let r = 0; r < 3; r++) {
  const c0 = cpu(); const t0 = performance.now();
  await run(N);
  console.log(`sends/s ${(N / ((performance.now() - t0) / 1000)).toFixed(0)}  server CPU per send ${((cpu() - c0) * 1000 / N).toFixed(0)} µs`);
}
client.dispose(); proc.child.kill('SIGTERM'); await proc.exited; process.exit(0);
