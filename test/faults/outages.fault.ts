import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp } from '../helpers/clients.ts';
import { Cluster } from './instances.ts';
import { describeReport, runScenario, type Fault, type Report, type World } from './scenario.ts';
import { startPostgres, startRedis } from './services.ts';
import { delay } from './traffic.ts';

// The fault suite (`npm run test:faults`): two instances on a PostgreSQL and a Redis of the
// suite's own; in each scenario a fault mid-traffic, then the outcome against the database.
// Seeded: FAULT_SEED repeats a run's order and timing (the seed is printed first).

const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : randomInt(2 ** 31);
const world = {} as World;

/** Runs one scenario, prints its report, and checks it (softly: every broken promise shows at once). */
async function check(name: string, index: number, fault: Fault): Promise<Report> {
  const report = await runScenario(world, index, fault);
  console.log(describeReport(name, seed, report));
  expectClean(report);
  return report;
}

/** The four subscribers at home on a stopped instance had to reconnect: otherwise the scenario tested nothing. */
function expectMoved(r: Report): void {
  const moved = Object.values(r.subscribers).filter((s) => s.sessions > 1).length;
  expect.soft(moved, 'subscribers that reconnected to the other instance').toBeGreaterThanOrEqual(4);
}

function expectClean(r: Report): void {
  expect.soft(r.gaveUp, 'sends never acknowledged within 15 s of retrying').toBe(0);
  expect.soft(r.acknowledgedNotStored, 'acknowledged sends not stored').toBe(0);
  expect.soft(r.storedNotAcknowledged, 'stored messages no sender was acknowledged for').toBe(0);
  expect.soft(r.storedCopies, 'sender + clientId stored more than once (a retry made a copy)').toBe(0);
  expect.soft(r.seqGaps, 'stored seqs not 1, 2, 3…').toBe(0);
  expect.soft(r.lost, 'stored messages missing at live subscribers').toBe(0);
  expect.soft(r.duplicated, 'messages received live twice').toBe(0);
  expect.soft(r.misordered, 'live messages out of seq order').toBe(0);
  expect.soft(r.completeAfterMs, 'every subscriber complete without new traffic').not.toBeNull();
  // A send refused during an outage must say UNAVAILABLE (retry), never INTERNAL_SERVER_ERROR.
  expect.soft(Object.keys(r.sendErrorCodes).filter((code) => code !== 'UNAVAILABLE'), 'error codes answered to sends').toEqual([]);
  expect.soft(r.leftoverSubscriptions, 'instances not back to idle after the clients left').toEqual({});
  // A fault the server survives must still be handled where it happens, never as an uncaught exception.
  expect.soft(Object.keys(r.serverErrors).filter((msg) => /uncaught|unhandled/i.test(msg)), 'uncaught errors in the servers').toEqual([]);
}

beforeAll(async () => {
  console.log(`[faults] seed ${seed} (FAULT_SEED=${seed} npm run test:faults repeats this run)`);
  world.seed = seed;
  [world.redis, world.postgres] = await Promise.all([startRedis(), startPostgres()]);
  world.cluster = new Cluster({ DATABASE_URL: world.postgres.url, REDIS_URL: world.redis.url });
  await world.cluster.ensure();
  world.users = await Promise.all([0, 1, 2, 3].map(() => signUp(world.cluster.instances[0])));
});

afterAll(async () => {
  // Each step on its own: one that fails must not leave the others' processes behind.
  await world.cluster?.stop().catch((err) => console.error('[faults] stopping the instances failed', err));
  await world.redis?.destroy().catch((err) => console.error('[faults] stopping Redis failed', err));
  await world.postgres?.destroy().catch((err) => console.error('[faults] stopping PostgreSQL failed', err));
});

/** Redis down for `ms`, started again on its port whatever happens meanwhile. */
async function redisOutage({ redis }: World, ms: number): Promise<void> {
  await redis.kill();
  try {
    await delay(ms);
  } finally {
    await redis.start();
  }
}

describe('Redis', () => {
  it('1. stopped for 3–5 s while traffic goes on', async () => {
    await check('Redis stopped mid-traffic', 1, { inject: (w, random) => redisOutage(w, 3000 + random() * 2000) });
  });

  it('2. restarted, then the conversation goes quiet: subscribers still get every message', async () => {
    await check('Redis restarted, then quiet', 2, { inject: (w, random) => redisOutage(w, 1000 + random() * 1000), quietAfter: true });
  });
});

describe('PostgreSQL', () => {
  it('3a. restarted (pg_ctl restart -m fast) mid-traffic', async () => {
    await check('PostgreSQL restarted', 3, { inject: (w) => w.postgres.restart() });
  });

  it('3b. down for 3 s (pg_ctl stop -m fast, start) mid-traffic', async () => {
    await check('PostgreSQL down for 3 s', 4, {
      async inject({ postgres }) {
        await postgres.stop();
        try {
          await delay(3000);
        } finally {
          await postgres.start();
        }
      },
    });
  });
});

describe('an instance', () => {
  it('4a. SIGKILLed mid-traffic: its subscribers reconnect to the other and catch up', async () => {
    const report = await check('instance SIGKILLed', 5, { inject: async ({ cluster }, random) => void (await cluster.instances[random() < 0.5 ? 0 : 1].kill('SIGKILL')) });
    expectMoved(report);
  });

  it('4b. SIGTERMed mid-traffic (graceful stop): its subscribers move to the other', async () => {
    const report = await check('instance SIGTERMed', 6, {
      async inject({ cluster }, random) {
        const code = await cluster.instances[random() < 0.5 ? 0 : 1].kill('SIGTERM');
        expect.soft(code, 'exit code of a graceful stop').toBe(0);
      },
    });
    expectMoved(report);
    // Every request here takes milliseconds: a stop that takes seconds waited on something
    // else (SHUTDOWN_GRACE is the bound for slow requests, not the usual time).
    expect.soft(report.timings.faultMs, 'ms from SIGTERM to exit, with only short requests open').toBeLessThan(3000);
  });
});
