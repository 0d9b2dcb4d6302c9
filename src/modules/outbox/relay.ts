import type pg from 'pg';
import type { Logger } from '../../lib/logger.ts';
import type { Consumer, Delivery, DeliveryOutcome, OutboxEvent } from './consumer.ts';

export interface RelayOptions {
  /** Tries before a delivery is dead (listed for admins to replay). */
  maxAttempts: number;
  /** Seconds before the first retry; each next one waits twice as long (with jitter), at most an hour. */
  retryBase: number;
  /** Hours delivered events and deliveries are kept before they are pruned. */
  retentionHours: number;
  /** Seconds between looks for work nobody announced (another instance's events, one that stopped mid-way). */
  pollSeconds: number;
  /**
   * Seconds a claimed delivery is this instance's: longer than any consumer takes to try it,
   * so that only a delivery whose instance died mid-try is claimed again (after this).
   */
  leaseSeconds: number;
}

/** Timestamps are stored as UTC in columns without a time zone (Prisma's convention). */
const UTC_NOW = `(now() AT TIME ZONE 'UTC')`;
/** Events fanned out per transaction. */
const FAN_OUT_BATCH = 500;
/** Any number, the same on every instance: one fans out at a time (see `fanOut`). */
const FAN_OUT_LOCK = 72_616_001;
const MAX_DELAY_SECONDS = 3600;
/**
 * How long a kick waits, gathering the events committed meanwhile into one fan-out. A fan-out
 * costs a few milliseconds of database work whatever it carries (in the embedded database,
 * the server's own CPU): at 20 ms a busy instance spent a third more CPU per delivered event
 * (`npm run bench`), at 200 ms it is a few percent, and consumers hear of events a fifth of a
 * second later.
 */
const KICK_DELAY_MS = 200;
/** At most this long between tries while a consumer is unavailable (it also wakes the relay when back). */
const UNAVAILABLE_RETRY_SECONDS = 30;
const PRUNE_EVERY_MS = 10 * 60_000;

export interface ConsumerStats {
  /** Deliveries waiting (or being tried), and how long the oldest has waited, in seconds. */
  pending: number;
  oldestPendingSeconds: number | null;
  dead: number;
}

/**
 * Hands every committed event to every consumer, at least once. One relay runs per instance;
 * with several instances they share the work through the database:
 *
 * - Fan-out: events not yet handed out are read in id order, each consumer says where each
 *   goes, and one `EventDelivery` row per target is stored, in one transaction that also marks
 *   the events handed out. One instance fans out at a time (a transaction-scoped advisory
 *   lock): two interleaving would store a conversation's later events before its earlier ones.
 * - Delivery: each consumer has its own loop, so a receiver that hangs holds up only its own
 *   deliveries. It claims due deliveries with `FOR UPDATE SKIP LOCKED` and a lease, and only
 *   the earliest pending one of each (target, key), so one target gets one conversation's
 *   events in order, one at a time. A failure waits base × 2^(tries−1) (±50%) before the next
 *   try; after `maxAttempts` the delivery is dead until an admin replays it.
 *
 * The relay wakes when this instance records an event (`kick`), when a retry is due, and every
 * `pollSeconds` for work of other instances (or of one that died after its commit).
 */
export class OutboxRelay {
  private readonly consumers = new Map<string, ConsumerLoop>();
  private readonly fanOutLoop = new Loop(
    () => this.fanOut(),
    (err) => this.log.warn({ err }, 'outbox: handing out events failed; retrying'),
  );
  private timers: NodeJS.Timeout[] = [];
  private kicked?: NodeJS.Timeout;
  private lastPrune = Date.now();

  constructor(
    private readonly sql: pg.Pool,
    private readonly log: Logger,
    private readonly options: RelayOptions,
  ) {}

  register(consumer: Consumer): void {
    this.consumers.set(consumer.name, new ConsumerLoop(consumer, this.sql, this.log, this.options));
  }

  start(): void {
    const poll = setInterval(() => this.wakeAll(), this.options.pollSeconds * 1000);
    poll.unref();
    this.timers.push(poll);
    this.wakeAll();
  }

  /**
   * New events were committed here: hand them out in a moment rather than at the next poll.
   * The moment (KICK_DELAY_MS) gathers the events of a busy instance into one fan-out: each
   * costs a transaction of a few statements, which per event would take the database (the
   * embedded one has a single connection) from the sends themselves.
   */
  kick(): void {
    if (this.consumers.size === 0 || this.kicked) return;
    this.kicked = setTimeout(() => {
      this.kicked = undefined;
      this.fanOutLoop.wake();
    }, KICK_DELAY_MS);
    this.kicked.unref();
  }

  /** Stops looking for work and waits for deliveries under way. */
  async stop(): Promise<void> {
    clearTimeout(this.kicked);
    this.timers.forEach(clearInterval);
    this.timers = [];
    await this.fanOutLoop.stop();
    await Promise.all([...this.consumers.values()].map((loop) => loop.stop()));
  }

  /**
   * Tries a delivery again from the start (a dead one, or one delivered already), keeping its
   * id: after the pending deliveries before it of its target and key. An unknown id changes
   * nothing (the caller reads the row and answers NOT_FOUND).
   */
  async replay(id: number): Promise<void> {
    const { rows } = await this.sql.query<{ consumer: string }>({
      name: 'outbox-replay',
      text: `UPDATE "EventDelivery" SET status = 'PENDING', attempts = 0, "nextAttemptAt" = ${UTC_NOW}, "leaseUntil" = NULL,
               error = NULL, "statusCode" = NULL, "deliveredAt" = NULL
             WHERE id = $1 AND status <> 'PENDING' RETURNING consumer`,
      values: [id],
    });
    if (rows[0]) this.consumers.get(rows[0].consumer)?.wake();
  }

  /** Each consumer's backlog, for /health. */
  async stats(): Promise<Record<string, ConsumerStats>> {
    const { rows } = await this.sql.query<{ consumer: string; pending: number; oldest: number | null; dead: number }>({
      name: 'outbox-stats',
      text: `SELECT consumer,
               count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
               extract(epoch FROM ${UTC_NOW} - min("createdAt") FILTER (WHERE status = 'PENDING'))::float AS oldest,
               count(*) FILTER (WHERE status = 'DEAD')::int AS dead
             FROM "EventDelivery" WHERE status <> 'DELIVERED' GROUP BY consumer`,
    });
    const stats: Record<string, ConsumerStats> = {};
    for (const name of this.consumers.keys()) stats[name] = { pending: 0, oldestPendingSeconds: null, dead: 0 };
    for (const row of rows) {
      stats[row.consumer] = { pending: row.pending, oldestPendingSeconds: row.oldest === null ? null : Math.round(row.oldest), dead: row.dead };
    }
    return stats;
  }

  private wakeAll(): void {
    if (this.consumers.size > 0) this.fanOutLoop.wake();
    for (const loop of this.consumers.values()) loop.wake();
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      void this.prune().catch((err) => this.log.warn({ err }, 'outbox: pruning failed'));
    }
  }

  /** Hands out one batch of new events; true when there may be more. */
  private async fanOut(): Promise<boolean> {
    const client = await this.sql.connect();
    // A checked-out connection that the database drops (a restart) emits 'error' on itself, not
    // on the pool: without a listener that was an uncaught exception.
    const onLost = (err: Error) => this.log.warn({ err }, 'outbox: the database connection was lost during a fan-out');
    client.on('error', onLost);
    let failure: unknown;
    let more = false;
    const woken = new Set<string>();
    try {
      await client.query('BEGIN');
      const { rows: locked } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [FAN_OUT_LOCK]);
      if (!locked[0].ok) {
        // Another instance is fanning out; it will get these too. Look again at the next poll.
        await client.query('ROLLBACK');
        return false;
      }
      const { rows: events } = await client.query<OutboxEvent>({
        name: 'outbox-unsent',
        text: `SELECT id, type, topic, payload, "createdAt" FROM "OutboxEvent" WHERE "publishedAt" IS NULL ORDER BY id LIMIT ${FAN_OUT_BATCH}`,
      });
      if (events.length > 0) {
        const rows: Array<[string, string, string, number, string, string, number | null]> = [];
        for (const [name, { consumer }] of this.consumers) {
          const targets = await consumer.targets(events, client);
          for (const event of events) {
            for (const t of targets.get(event.id) ?? []) {
              rows.push([name, t.target, event.topic, event.id, event.type, JSON.stringify(t.payload ?? event.payload), t.webhookId ?? null]);
              woken.add(name);
            }
          }
        }
        if (rows.length > 0) {
          const column = (i: number) => rows.map((r) => r[i]);
          await client.query({
            name: 'outbox-deliveries',
            text: `INSERT INTO "EventDelivery" (consumer, target, "orderKey", "eventId", event, payload, "webhookId", "nextAttemptAt", "createdAt")
                   SELECT c, t, k, e, ev, p::jsonb, w, ${UTC_NOW}, ${UTC_NOW}
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[]) AS x(c, t, k, e, ev, p, w)`,
            values: [0, 1, 2, 3, 4, 5, 6].map(column),
          });
        }
        await client.query({
          name: 'outbox-handed-out',
          text: `UPDATE "OutboxEvent" SET "publishedAt" = ${UTC_NOW} WHERE id = ANY($1::int[])`,
          values: [events.map((e) => e.id)],
        });
        more = events.length === FAN_OUT_BATCH;
      }
      await client.query('COMMIT');
    } catch (err) {
      failure = err;
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.off('error', onLost);
      // A connection that failed is closed rather than handed to the next caller.
      client.release(failure instanceof Error ? failure : undefined);
    }
    for (const name of woken) this.consumers.get(name)!.wake();
    return more;
  }

  private async prune(): Promise<void> {
    const hours = this.options.retentionHours;
    await this.sql.query(`DELETE FROM "EventDelivery" WHERE status = 'DELIVERED' AND "deliveredAt" < ${UTC_NOW} - make_interval(hours => $1)`, [hours]);
    await this.sql.query(
      `DELETE FROM "OutboxEvent" o WHERE o."publishedAt" < ${UTC_NOW} - make_interval(hours => $1)
       AND NOT EXISTS (SELECT 1 FROM "EventDelivery" d WHERE d."eventId" = o.id)`,
      [hours],
    );
  }
}

/**
 * Runs `step` until it says there is no more, once at a time: a wake while it runs makes it run
 * again after. A failing step (the database away) is logged and tried again later.
 */
class Loop {
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly step: () => Promise<boolean>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        if (await this.step()) this.again = true;
      } catch (err) {
        this.onError(err);
        // Tried again in a moment rather than at once: the database may be away.
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.wake(), 1000);
        this.retry.unref();
        return;
      }
    } while (this.again && !this.stopped);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.running;
  }
}

/** One consumer's deliveries: claimed when due, tried `concurrency` at a time, their outcome stored. */
class ConsumerLoop {
  private readonly loop: Loop;
  private readonly inFlight = new Set<Promise<void>>();
  private nextDue?: NodeJS.Timeout;

  constructor(
    readonly consumer: Consumer,
    private readonly sql: pg.Pool,
    private readonly log: Logger,
    private readonly options: RelayOptions,
  ) {
    this.loop = new Loop(
      () => this.claimAndStart(),
      (err) => log.warn({ err, consumer: consumer.name }, 'outbox: claiming deliveries failed; retrying'),
    );
    consumer.onReady?.(() => this.wake());
  }

  wake(): void {
    this.loop.wake();
  }

  async stop(): Promise<void> {
    clearTimeout(this.nextDue);
    await this.loop.stop();
    await Promise.all(this.inFlight);
    await this.consumer.stop?.();
  }

  /** Starts as many due deliveries as there are free slots; true when all slots were filled (there may be more). */
  private async claimAndStart(): Promise<boolean> {
    const free = (this.consumer.concurrency ?? 8) - this.inFlight.size;
    if (free <= 0) return false;
    const { rows } = await this.sql.query<Delivery>({
      name: 'outbox-claim',
      text: `UPDATE "EventDelivery" d SET "leaseUntil" = ${UTC_NOW} + make_interval(secs => $3), attempts = d.attempts + 1
             FROM (
               SELECT j.id FROM "EventDelivery" j
               WHERE j.consumer = $1 AND j.status = 'PENDING' AND j."nextAttemptAt" <= ${UTC_NOW}
                 AND (j."leaseUntil" IS NULL OR j."leaseUntil" < ${UTC_NOW})
                 AND NOT EXISTS (
                   SELECT 1 FROM "EventDelivery" e
                   WHERE e.consumer = j.consumer AND e.target = j.target AND e."orderKey" = j."orderKey"
                     AND e.status = 'PENDING' AND e."eventId" < j."eventId"
                 )
               ORDER BY j."eventId" LIMIT $2 FOR UPDATE SKIP LOCKED
             ) due
             WHERE d.id = due.id
             RETURNING d.id, d.consumer, d.target, d."orderKey", d."eventId", d.event, d.payload, d.attempts, d."webhookId", d."createdAt"`,
      values: [this.consumer.name, free, this.options.leaseSeconds],
    });
    for (const delivery of rows) {
      const attempt: Promise<void> = this.attempt(delivery).finally(() => {
        this.inFlight.delete(attempt);
        this.wake();
      });
      this.inFlight.add(attempt);
    }
    if (rows.length < free) await this.scheduleNextDue();
    return rows.length === free;
  }

  private async attempt(delivery: Delivery): Promise<void> {
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.consumer.deliver(delivery);
    } catch (err) {
      outcome = { ok: false, error: (err as Error)?.message ?? String(err) };
    }
    try {
      await this.record(delivery, outcome);
    } catch (err) {
      // The lease runs out and the delivery is tried again: at least once, never lost.
      this.log.warn({ err, consumer: this.consumer.name, delivery: delivery.id }, 'outbox: storing a delivery outcome failed');
    }
  }

  private async record(delivery: Delivery, outcome: DeliveryOutcome): Promise<void> {
    if (outcome.ok) {
      await this.sql.query({
        name: 'outbox-delivered',
        text: `UPDATE "EventDelivery" SET status = 'DELIVERED', "deliveredAt" = ${UTC_NOW}, "leaseUntil" = NULL, "statusCode" = $2, error = NULL WHERE id = $1`,
        values: [delivery.id, outcome.statusCode ?? null],
      });
      return;
    }
    if (outcome.unavailable) {
      // Not this delivery's fault: the try is not counted, and the next one comes soon (or as
      // soon as the consumer says it is back), however long the outage.
      await this.sql.query({
        name: 'outbox-unavailable',
        text: `UPDATE "EventDelivery" SET attempts = GREATEST(attempts - 1, 0), "nextAttemptAt" = ${UTC_NOW} + make_interval(secs => $2),
                 "leaseUntil" = NULL, error = $3 WHERE id = $1`,
        values: [delivery.id, Math.min(this.options.retryBase * 4, UNAVAILABLE_RETRY_SECONDS) * (0.5 + Math.random()), outcome.error.slice(0, 1000)],
      });
      return;
    }
    const dead = outcome.final || delivery.attempts >= this.options.maxAttempts;
    const delay = Math.min(this.options.retryBase * 2 ** (delivery.attempts - 1), MAX_DELAY_SECONDS) * (0.5 + Math.random());
    await this.sql.query({
      name: 'outbox-failed',
      text: `UPDATE "EventDelivery" SET status = $2::"DeliveryStatus", "nextAttemptAt" = ${UTC_NOW} + make_interval(secs => $3),
               "leaseUntil" = NULL, "statusCode" = $4, error = $5 WHERE id = $1`,
      values: [delivery.id, dead ? 'DEAD' : 'PENDING', delay, outcome.statusCode ?? null, outcome.error.slice(0, 1000)],
    });
    if (dead) this.log.warn({ consumer: this.consumer.name, delivery: delivery.id, error: outcome.error }, 'outbox: delivery failed for good');
  }

  /** Wakes the loop when the earliest retry now pending is due (the poll catches anything else). */
  private async scheduleNextDue(): Promise<void> {
    const { rows } = await this.sql.query<{ wait: number | null }>({
      name: 'outbox-next-due',
      text: `SELECT extract(epoch FROM min("nextAttemptAt") - ${UTC_NOW})::float AS wait FROM "EventDelivery" WHERE consumer = $1 AND status = 'PENDING'`,
      values: [this.consumer.name],
    });
    const wait = rows[0]?.wait;
    clearTimeout(this.nextDue);
    if (wait === null || wait === undefined || wait > this.options.pollSeconds) return;
    this.nextDue = setTimeout(() => this.wake(), Math.max(0, wait * 1000) + 5);
    this.nextDue.unref();
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Hands committed events to the webhook, push and MQTT consumers. */
    outbox: OutboxRelay;
  }
}
