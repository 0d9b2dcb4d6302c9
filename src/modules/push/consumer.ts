import https from 'node:https';
import { isIP } from 'node:net';
import type pg from 'pg';
import webpush from 'web-push';
import type { Config } from '../../config.ts';
import type { Services } from '../../services/services.ts';
import type { Consumer, Delivery, DeliveryOutcome, DeliveryTarget, OutboxEvent } from '../outbox/consumer.ts';

/** How long a push service keeps a message push for a device that is away (then drops it). */
const MESSAGE_TTL_SECONDS = 24 * 3600;
/** Seconds a push service has to answer before the delivery counts as failed (and is retried). */
const SEND_TIMEOUT_MS = 10_000;
/** The longest notification body; the rest of the message is in the app. */
const BODY_MAX_CHARS = 200;
/** The VAPID contact when none is configured (see `pushSubject`): a reserved, undeliverable domain. */
const FALLBACK_SUBJECT = 'mailto:webpush@example.invalid';

const MEDIA_BODY: Record<string, string> = { IMAGE: 'Photo', FILE: 'File', AUDIO: 'Audio', VIDEO: 'Video' };

/**
 * The VAPID `sub` claim: who push services may contact about this sender. PUSH_SUBJECT, else
 * PUBLIC_URL when it is https, else the admin's email; web-push accepts only mailto: and https:.
 */
export function pushSubject(config: Config): string {
  if (config.PUSH_SUBJECT) return config.PUSH_SUBJECT;
  if (config.PUBLIC_URL?.startsWith('https://')) return new URL(config.PUBLIC_URL).origin;
  if (config.ADMIN_EMAIL) return `mailto:${config.ADMIN_EMAIL}`;
  return FALLBACK_SUBJECT;
}

/** One recipient of one event and one of their subscriptions, as the batch query finds them. */
interface Row {
  event: number;
  recipient: number;
  subscription: number;
  actorName: string | null;
  conversationKind: string | null;
  conversationTitle: string | null;
}

/**
 * Web push (the Web Push protocol: VAPID-signed, aes128gcm-encrypted) to the browsers of users
 * who are not connected: a `message.created` goes to every other member of a direct or group
 * conversation, a `call.started` to the callee, each only while that user has no open
 * connection on any instance (else the live connection tells them), and to each of their stored
 * subscriptions: one delivery per subscription. The JSON each push carries is decided when the
 * event is handed out (README, "Web push"). A push service answering 404 or 410 has forgotten
 * the subscription: it is deleted and the delivery ends; other failures are retried.
 *
 * Push endpoints are URLs users give, so they go through the same outbound policy as webhooks
 * (no private or loopback addresses unless WEBHOOK_ALLOW_PRIVATE or WEBHOOK_ALLOWED_NETWORKS allows them).
 *
 * `tls.ca`: certificates trusted for push services besides the system's (and
 * NODE_EXTRA_CA_CERTS); the server passes none, a test passes its own push service's.
 */
export function pushConsumer(services: Services, tls: Pick<https.AgentOptions, 'ca'> = {}): Consumer {
  const { sql, presence, vapid, config, outbound, log } = services;
  const subject = pushSubject(config);
  const vapidDetails = { subject, publicKey: vapid.publicKey, privateKey: vapid.privateKey };
  // The policy's lookup refuses a name that resolves to a refused address, as the connection is made.
  const agent = new https.Agent({ keepAlive: true, lookup: outbound.lookup(), ...tls });
  let warnedSubject = false;

  return {
    name: 'push',
    concurrency: 16,
    async targets(events: OutboxEvent[], db: pg.ClientBase) {
      const targets = new Map<number, DeliveryTarget[]>();
      const wanted = events.filter((e) => e.type === 'message.created' ? e.payload.kind !== 'SYSTEM' : e.type === 'call.started');
      if (wanted.length === 0) return targets;
      // Most batches find no subscription at all (no browser subscribed yet): one look at an index.
      const { rowCount } = await db.query({ name: 'push-any-subscription', text: 'SELECT 1 FROM "PushSubscription" LIMIT 1' });
      if (!rowCount) return targets;
      // An id that is not one (a malformed payload) matches nothing rather than failing the whole batch.
      const num = (v: unknown) => {
        const n = typeof v === 'number' || typeof v === 'string' ? Number(v) : NaN;
        return Number.isInteger(n) && n > 0 && n <= 2 ** 31 - 1 ? n : null;
      };
      const { rows } = await db.query<Row>({
        name: 'push-targets',
        text: `WITH wanted AS (
                 SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::int[], $5::int[]) AS w(event, type, conv, actor, callee)
               ), recipients AS (
                 SELECT w.event, p."userId" AS recipient, w.actor, c.kind::text AS "conversationKind", c.title AS "conversationTitle"
                 FROM wanted w
                 JOIN "Conversation" c ON c.id = w.conv AND c.kind <> 'PUBLIC'
                 JOIN "Participant" p ON p."conversationId" = w.conv AND p."leftAt" IS NULL AND p."userId" <> w.actor
                 WHERE w.type = 'message.created'
                 UNION ALL
                 SELECT w.event, w.callee, w.actor, NULL, NULL FROM wanted w WHERE w.type = 'call.started' AND w.callee <> w.actor
               )
               SELECT r.event, r.recipient, s.id AS subscription, r."conversationKind", r."conversationTitle",
                      coalesce(nullif(btrim(a."displayName"), ''), a.username) AS "actorName"
               FROM recipients r
               JOIN "User" u ON u.id = r.recipient AND u.status = 'ACTIVE'
               JOIN "PushSubscription" s ON s."userId" = r.recipient
               LEFT JOIN "User" a ON a.id = r.actor
               ORDER BY r.event, s.id`,
        values: [
          wanted.map((e) => e.id),
          wanted.map((e) => e.type),
          wanted.map((e) => (e.type === 'message.created' ? num(e.payload.conversationId) : null)),
          wanted.map((e) => num(e.type === 'message.created' ? e.payload.senderId : e.payload.callerId)),
          wanted.map((e) => (e.type === 'call.started' ? num(e.payload.calleeId) : null)),
        ],
      });
      if (rows.length === 0) return targets;
      // Whoever has a connection open now hears of it there. Without an answer (Redis away), a
      // push too many is better than holding up every consumer's events: all count as away.
      const recipients = [...new Set(rows.map((r) => r.recipient))];
      const online = await presence.isOnline(recipients).catch((err: unknown) => {
        log.warn({ err }, 'web push: presence did not answer; pushing to everyone');
        return recipients.map(() => false);
      });
      const away = new Set(recipients.filter((_, i) => !online[i]));
      const byId = new Map(wanted.map((e) => [e.id, e]));
      for (const row of rows) {
        if (!away.has(row.recipient)) continue;
        const payload = pushPayload(byId.get(row.event)!, row);
        const list = targets.get(row.event) ?? [];
        list.push({ target: String(row.subscription), payload });
        targets.set(row.event, list);
      }
      return targets;
    },

    async deliver(delivery: Delivery): Promise<DeliveryOutcome> {
      const { rows } = await sql.query<{ userId: number; endpoint: string; p256dh: string; auth: string }>({
        name: 'push-subscription-by-id',
        text: 'SELECT "userId", endpoint, p256dh, auth FROM "PushSubscription" WHERE id = $1',
        values: [Number(delivery.target)],
      });
      const sub = rows[0];
      if (!sub) return { ok: false, final: true, error: 'subscription removed' };
      // Saving an endpoint again moves it to whoever saved it: it is no longer this user's browser.
      if (String(sub.userId) !== delivery.payload.userId) return { ok: false, final: true, error: 'The subscription now belongs to another account' };
      const payload = delivery.payload;
      const isCall = payload.type === 'call';
      // A call rings for CALL_RING_TIMEOUT seconds: its push is worth nothing after that.
      const started = Date.parse(String(payload.startedAt));
      const ttl = !isCall
        ? MESSAGE_TTL_SECONDS
        : Number.isNaN(started)
          ? config.CALL_RING_TIMEOUT
          : Math.floor((started - Date.now()) / 1000) + config.CALL_RING_TIMEOUT;
      if (!(ttl > 0)) return { ok: false, final: true, error: 'The call stopped ringing before its push could go out' };
      const host = new URL(sub.endpoint).hostname.replace(/^\[|\]$/g, '');
      const refused = isIP(host) ? outbound.refusal(host) : null;
      if (refused) return { ok: false, final: true, error: `Refused: the endpoint ${refused}` };
      if (subject === FALLBACK_SUBJECT && !warnedSubject) {
        warnedSubject = true;
        log.warn('web push: set PUSH_SUBJECT (mailto: or https:) so push services know whom to contact; using a placeholder');
      }
      try {
        const result = await withDeadline(
          webpush.sendNotification({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, JSON.stringify(payload), {
            vapidDetails,
            TTL: ttl,
            urgency: isCall ? 'high' : 'normal',
            contentEncoding: 'aes128gcm',
            timeout: SEND_TIMEOUT_MS,
            agent,
          }),
          SEND_TIMEOUT_MS,
        );
        return { ok: true, statusCode: result.statusCode };
      } catch (err) {
        if (err instanceof webpush.WebPushError) {
          const status = err.statusCode;
          if (status === 404 || status === 410) {
            // The browser unsubscribed, or the push service expired the subscription: it never comes back.
            await sql.query({
              name: 'push-subscription-gone',
              text: 'DELETE FROM "PushSubscription" WHERE id = $1 AND endpoint = $2',
              values: [Number(delivery.target), sub.endpoint],
            });
            log.info({ subscription: Number(delivery.target), userId: sub.userId, statusCode: status }, 'web push: subscription gone; removed');
            return { ok: false, final: true, statusCode: status, error: `The push service answered ${status}: subscription gone, removed` };
          }
          const said = err.body ? `: ${String(err.body).slice(0, 200)}` : '';
          return { ok: false, statusCode: status, error: `The push service answered ${status}${said}` };
        }
        const code = (err as NodeJS.ErrnoException).code;
        // A name that resolves to a refused address: allowing it is the operator's decision, not a retry's.
        if (code === 'EREFUSED_TARGET') return { ok: false, final: true, error: (err as Error).message };
        return { ok: false, error: (err as Error)?.message ?? String(err) };
      }
    },
  };
}

/** What one push carries: the JSON a service worker's `push` event reads (`event.data.json()`). */
function pushPayload(event: OutboxEvent, row: Row): Record<string, unknown> {
  const p = event.payload;
  const name = row.actorName ?? 'Someone';
  const userId = String(row.recipient);
  if (event.type === 'call.started') {
    const kind = String(p.kind ?? 'AUDIO');
    return {
      type: 'call',
      title: name,
      body: `Incoming ${kind === 'VIDEO' ? 'video' : 'audio'} call`,
      tag: `call:${p.id}`,
      userId,
      callId: String(p.id),
      callerId: String(p.callerId),
      kind,
      startedAt: p.startedAt,
    };
  }
  const kind = String(p.kind ?? 'TEXT');
  const text = cut(String(p.content ?? '').trim() || MEDIA_BODY[kind] || 'New message', BODY_MAX_CHARS);
  // A group says where, then who; a direct conversation is named by its other member.
  const titled = row.conversationKind === 'GROUP' && row.conversationTitle;
  return {
    type: 'message',
    title: titled ? row.conversationTitle : name,
    body: titled ? `${name}: ${text}` : text,
    tag: `conversation:${p.conversationId}`,
    userId,
    conversationId: String(p.conversationId),
    messageId: String(p.id),
    senderId: String(p.senderId),
    kind,
    createdAt: p.createdAt,
  };
}

/** At most `max` characters (code points, so no emoji is split), with an ellipsis when cut. */
function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** `promise`, or a rejection after `ms`: web-push's own timeout is per idle socket, not per send. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
