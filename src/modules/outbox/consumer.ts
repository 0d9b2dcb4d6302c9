import type pg from 'pg';

/**
 * A domain event as the outbox stores it: written in the same transaction as the change it
 * describes (`outbox.ts`), so it exists exactly when the change does.
 */
export interface OutboxEvent {
  id: number;
  /** What happened, in seed 003's words where it has them (`message.created`, `call.ended`, …). */
  type: string;
  /** What it is about (`conversation:5`, `user:3`, `call:9`): one consumer's deliveries of one key go out in event order. */
  topic: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** One event on its way to one target of one consumer. */
export interface Delivery {
  id: number;
  consumer: string;
  target: string;
  orderKey: string;
  eventId: number;
  event: string;
  payload: Record<string, unknown>;
  /** This attempt's number, from 1. */
  attempts: number;
  webhookId: number | null;
  createdAt: Date;
}

/** Where an event goes for one consumer: a target, and what to send there (the event's payload unless given). */
export interface DeliveryTarget {
  target: string;
  payload?: Record<string, unknown>;
  webhookId?: number;
}

export type DeliveryOutcome =
  | { ok: true; statusCode?: number }
  /**
   * `final`: trying again cannot help (the target is gone): the delivery ends now, as dead.
   * `unavailable`: the consumer itself cannot deliver now (its broker is down): the try does
   * not count towards OUTBOX_MAX_ATTEMPTS, so an outage of any length holds events in the
   * outbox instead of making them dead; the consumer calls its `onReady` wake when it is back.
   */
  | { ok: false; error: string; statusCode?: number; final?: boolean; unavailable?: boolean };

/**
 * Something that must happen for committed events, at least once, whatever fails meanwhile:
 * a webhook, a web push, an MQTT message. The relay (`relay.ts`) asks each consumer where each
 * new event goes, stores one delivery per target, and hands those to `deliver` until it
 * succeeds, retrying with backoff and moving it to the dead letters after `maxAttempts`.
 */
export interface Consumer {
  name: string;
  /**
   * The targets of each event (an event absent from the answer goes nowhere). Reads through
   * `db`, the relay's own connection (the embedded database has only one).
   */
  targets(events: OutboxEvent[], db: pg.ClientBase): Promise<Map<number, DeliveryTarget[]>>;
  /** Delivers once; must settle within its own time limit (a receiver that hangs is a failure). */
  deliver(delivery: Delivery): Promise<DeliveryOutcome>;
  /** Deliveries under way at once (default 8). */
  concurrency?: number;
  /** Lets go of what it holds (a broker connection) once the relay stopped and its deliveries settled. */
  stop?(): Promise<void>;
  /** Given the relay's wake for this consumer: to call when it can deliver again (reconnected). */
  onReady?(wake: () => void): void;
}
