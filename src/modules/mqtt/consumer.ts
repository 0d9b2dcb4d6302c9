import mqtt, { type MqttClient, type PacketCallback } from 'mqtt';
import type pg from 'pg';
import type { Logger } from '../../lib/logger.ts';
import type { Consumer, Delivery, DeliveryOutcome, DeliveryTarget, OutboxEvent } from '../outbox/consumer.ts';

/** One MQTT message of a delivery: published as JSON, QoS 1, not retained. */
export interface MqttMessage {
  topic: string;
  payload: Record<string, unknown>;
}

export interface MqttConsumerOptions {
  url: string;
  /** Unique per instance: a broker drops the older of two connections with one client id. */
  clientId: string;
  log: Logger;
  /** How long a delivery waits for a connection that is being made before it fails (ms). */
  connectWaitMs?: number;
  /** How long a delivery waits for the broker's PUBACK (ms). */
  ackTimeoutMs?: number;
}

const CONNECT_WAIT_MS = 2000;
const ACK_TIMEOUT_MS = 10_000;
/** Longest `last_message_preview`, in characters. */
const PREVIEW_LENGTH = 100;

/** Topics of seed 003 (chatrix), section 7. */
export const mqttTopics = {
  messages: (userId: string) => `chat/${userId}/messages`,
  readReceipts: (userId: string) => `chat/${userId}/read-receipts`,
  messagesStatus: (userId: string) => `chat/${userId}/messages-status`,
  conversations: (userId: string) => `chat/${userId}/conversations`,
};

/**
 * Seed 003's MQTT topics (`chat/{userId}/…`), fed from the outbox: each event becomes one delivery
 * per user it concerns (target `user:<id>`), holding the MQTT messages that user gets for it.
 * The relay retries a delivery until the broker acknowledged all of its messages, so a
 * broker that is away delays them but loses none; a user's deliveries of one conversation go
 * out one at a time in event order.
 *
 * One connection per instance (clean session; mqtt.js reconnects every 1–2 s while it is lost).
 * While it is down, a delivery fails at once (after a short wait for a connection being made)
 * rather than queueing inside mqtt.js: the relay keeps it and retries with backoff. A message
 * whose PUBACK is lost with the connection is withdrawn from mqtt.js, so that the relay's retry
 * is its only resend.
 */
export function mqttConsumer(options: MqttConsumerOptions): Consumer & { stop(): Promise<void> } {
  const { log } = options;
  const connectWaitMs = options.connectWaitMs ?? CONNECT_WAIT_MS;
  const ackTimeoutMs = options.ackTimeoutMs ?? ACK_TIMEOUT_MS;
  const client: MqttClient = mqtt.connect(options.url, {
    clientId: options.clientId,
    clean: true,
    // Spread over instances, so that a restarted broker is not met by all of them at once.
    reconnectPeriod: 1000 + Math.floor(Math.random() * 1000),
    connectTimeout: 5000,
  });
  /** Publishes waiting for their PUBACK: failed at once when the connection is lost. */
  const awaitingAck = new Set<(err: Error) => void>();
  /** Deliveries waiting a moment for a connection being made. */
  const awaitingConnection = new Set<(connected: boolean) => void>();
  let wasConnected = false;
  let lastError = '';

  /** The relay's wake: deliveries held while the broker was away go out as soon as it is back. */
  let wakeRelay = () => {};
  client.on('connect', () => {
    wasConnected = true;
    lastError = '';
    log.info({ clientId: options.clientId }, 'mqtt: connected to the broker');
    for (const done of [...awaitingConnection]) done(true);
    wakeRelay();
  });
  client.on('close', () => {
    for (const fail of [...awaitingAck]) fail(new Error('The connection to the MQTT broker was lost before its PUBACK'));
    if (wasConnected && !client.disconnecting) log.warn('mqtt: connection to the broker lost; reconnecting (deliveries wait in the outbox)');
    wasConnected = false;
  });
  client.on('error', (err) => {
    // Logged once per kind of failure rather than at every reconnect attempt.
    if (err.message !== lastError) log.warn({ err: err.message }, 'mqtt: broker connection failed; retrying');
    lastError = err.message;
  });

  return {
    name: 'mqtt',
    concurrency: 32,
    async targets(events: OutboxEvent[], db: pg.ClientBase) {
      return mqttTargets(events, db);
    },
    onReady(wake) {
      wakeRelay = wake;
    },
    async deliver(delivery: Delivery): Promise<DeliveryOutcome> {
      const messages = (delivery.payload as { messages?: MqttMessage[] }).messages;
      if (!Array.isArray(messages)) return { ok: false, final: true, error: 'The delivery holds no MQTT messages' };
      if (!(await connected())) return { ok: false, unavailable: true, error: 'Not connected to the MQTT broker' };
      try {
        // Sent in order on the one connection; each resolves at its PUBACK.
        await Promise.all(messages.map((m) => publish(m.topic, JSON.stringify(m.payload))));
        return { ok: true };
      } catch (err) {
        // Publishes fail only with the connection (lost before the PUBACK, or a timeout): the
        // broker is away, not this delivery at fault.
        return { ok: false, unavailable: true, error: (err as Error).message };
      }
    },
    async stop() {
      // The relay has stopped and waited for its deliveries: nothing is in flight.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => client.end(true, () => resolve()), 2000);
        client.end(!client.connected, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };

  /** True once connected, waiting a little for a connection being made. */
  async function connected(): Promise<boolean> {
    if (client.connected) return true;
    if (client.disconnecting) return false;
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        awaitingConnection.delete(done);
        resolve(value);
      };
      const timer = setTimeout(() => done(client.connected), connectWaitMs);
      awaitingConnection.add(done);
    });
  }

  /** Resolves when the broker acknowledged (PUBACK); fails on a lost connection or no answer in time. */
  function publish(topic: string, body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        awaitingAck.delete(finish);
        if (!err) return resolve();
        withdraw(callback);
        reject(err);
      };
      const callback: PacketCallback = (err) => finish(err ?? undefined);
      const timer = setTimeout(() => finish(new Error(`The MQTT broker did not acknowledge within ${ackTimeoutMs} ms`)), ackTimeoutMs);
      awaitingAck.add(finish);
      client.publish(topic, body, { qos: 1, retain: false }, callback);
    });
  }

  /** Drops a publish mqtt.js still holds, so it does not resend it on reconnection: the relay will. */
  function withdraw(callback: PacketCallback) {
    for (const [id, pending] of Object.entries(client.outgoing)) {
      if (pending.cb === callback) client.removeOutgoingMessage(Number(id));
    }
  }
}

interface MessageCreated {
  id: number;
  conversationId: number;
  senderId: number | null;
  kind: string;
  content: string;
  createdAt: string;
}

interface ConversationRead {
  conversationId: number;
  userId: number;
  messageId?: number | null;
  readAt: string;
  count?: number;
}

interface BatchFacts {
  /** Current members of the batch's conversations that are not PUBLIC (absent: PUBLIC or gone). */
  members: Record<string, number[]>;
  /** Attachments of the batch's messages. */
  media: Record<string, Array<Record<string, unknown>>>;
  /** The reader's unread messages after what they read, per `conversation.read` event. */
  unread: Record<string, number>;
}

/**
 * Where each event goes: one delivery per user it concerns, holding that user's MQTT messages.
 * Reads the batch's members, attachments and unread counts in one query through `db`.
 */
export async function mqttTargets(events: OutboxEvent[], db: pg.ClientBase): Promise<Map<number, DeliveryTarget[]>> {
  const targets = new Map<number, DeliveryTarget[]>();
  // An event without the ids it needs goes nowhere rather than failing the whole batch's fan-out.
  const created = events.filter((e) => e.type === 'message.created' && ids(e.payload.id, e.payload.conversationId));
  const reads = events.filter((e) => e.type === 'conversation.read' && ids(e.payload.conversationId, e.payload.userId));
  if (created.length === 0 && reads.length === 0) return targets;
  const readsOf = reads.map((e) => ({ event: e.id, ...(e.payload as unknown as ConversationRead) }));
  const { rows } = await db.query<BatchFacts>({
    name: 'mqtt-targets',
    text: `SELECT
       (SELECT COALESCE(jsonb_object_agg(c.id, ARRAY(
          SELECT p."userId" FROM "Participant" p WHERE p."conversationId" = c.id AND p."leftAt" IS NULL ORDER BY p."userId")), '{}')
        FROM "Conversation" c WHERE c.id = ANY($1::int[]) AND c.kind <> 'PUBLIC') AS members,
       (SELECT COALESCE(jsonb_object_agg(f.mid, f.media), '{}') FROM (
          SELECT "messageId" AS mid, jsonb_agg(jsonb_build_object('id', id::text, 'name', name, 'mime_type', "mimeType",
                   'size', size, 'width', width, 'height', height) ORDER BY id) AS media
          FROM "File" WHERE "messageId" = ANY($2::int[]) AND "deletedAt" IS NULL GROUP BY "messageId") f) AS media,
       (SELECT COALESCE(jsonb_object_agg(r.ev, (
          SELECT count(*) FROM "Message" m WHERE m."conversationId" = r.conv AND m.id > r.msg
            AND m."deletedAt" IS NULL AND m."senderId" IS DISTINCT FROM r.reader)), '{}')
        FROM unnest($3::int[], $4::int[], $5::int[], $6::int[]) AS r(ev, conv, reader, msg) WHERE r.msg IS NOT NULL) AS unread`,
    values: [
      [...new Set([...created, ...reads].map((e) => Number(e.payload.conversationId)))],
      created.map((e) => Number(e.payload.id)),
      readsOf.map((r) => r.event),
      readsOf.map((r) => Number(r.conversationId)),
      readsOf.map((r) => Number(r.userId)),
      readsOf.map((r) => (ids(r.messageId) ? Number(r.messageId) : null)),
    ],
  });
  const facts = rows[0];
  for (const event of created) {
    const list = forMessage(event.payload as unknown as MessageCreated, facts);
    if (list.length) targets.set(event.id, list);
  }
  for (const read of readsOf) {
    const list = forRead(read, facts);
    if (list.length) targets.set(read.event, list);
  }
  return targets;
}

/** True when every value is a database id (a number, or its string). */
function ids(...values: unknown[]): boolean {
  return values.every((v) => (typeof v === 'number' || typeof v === 'string') && Number.isSafeInteger(Number(v)) && Number(v) > 0);
}

const delivery = (userId: number, messages: MqttMessage[]): DeliveryTarget => ({ target: `user:${userId}`, payload: { messages } });

/** 7.1 and 7.4 ("updated") to every member but the sender. */
function forMessage(m: MessageCreated, facts: BatchFacts): DeliveryTarget[] {
  const members = facts.members[String(m.conversationId)];
  if (!members) return [];
  const conversationId = String(m.conversationId);
  const type = String(m.kind).toLowerCase();
  const media = facts.media[String(m.id)] ?? null;
  const message = {
    conversation_id: conversationId,
    message: {
      id: String(m.id),
      sender_id: m.senderId == null ? null : String(m.senderId),
      type,
      text: m.content,
      media,
      status: 'sent',
      created_at: m.createdAt,
    },
  };
  const update = {
    conversation_id: conversationId,
    last_message_at: m.createdAt,
    last_message_preview: preview(m.content, type),
    action: 'updated',
  };
  return members
    .filter((id) => id !== Number(m.senderId))
    .map((id) =>
      delivery(id, [
        { topic: mqttTopics.messages(String(id)), payload: message },
        { topic: mqttTopics.conversations(String(id)), payload: update },
      ]),
    );
}

/**
 * 7.2 to every other member, 7.3 to the reader, and 7.4 ("messages_read") to all of them; the
 * reader's 7.4 carries their unread count after this read (the others' counts did not change).
 */
function forRead(r: ConversationRead & { event: number }, facts: BatchFacts): DeliveryTarget[] {
  const members = facts.members[String(r.conversationId)];
  if (!members) return [];
  const conversationId = String(r.conversationId);
  const readBy = String(r.userId);
  const count = typeof r.count === 'number' ? { count: r.count } : {};
  const listUpdate = { conversation_id: conversationId, action: 'messages_read', read_by: readBy, read_at: r.readAt };
  const unread = facts.unread[String(r.event)];
  const reader = delivery(Number(r.userId), [
    {
      topic: mqttTopics.messagesStatus(readBy),
      payload: { conversation_id: conversationId, action: 'marked_as_read', read_by: readBy, read_at: r.readAt, ...count },
    },
    {
      topic: mqttTopics.conversations(readBy),
      payload: { ...listUpdate, ...(unread === undefined ? {} : { unread_count: Number(unread) }) },
    },
  ]);
  const others = members
    .filter((id) => id !== Number(r.userId))
    .map((id) =>
      delivery(id, [
        { topic: mqttTopics.readReceipts(String(id)), payload: { conversation_id: conversationId, read_by: readBy, read_at: r.readAt, ...count } },
        { topic: mqttTopics.conversations(String(id)), payload: listUpdate },
      ]),
    );
  return [reader, ...others];
}

/** The conversation list's line for a message: its text, shortened, or its kind for a text-less one. */
function preview(content: string, type: string): string {
  const chars = [...content.trim()];
  if (chars.length === 0) return `[${type}]`;
  return chars.length > PREVIEW_LENGTH ? `${chars.slice(0, PREVIEW_LENGTH - 1).join('')}…` : chars.join('');
}
