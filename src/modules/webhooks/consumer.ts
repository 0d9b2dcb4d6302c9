import { createHmac } from 'node:crypto';
import type pg from 'pg';
import type { OutboundPolicy } from '../../lib/outbound-http.ts';
import type { Consumer, Delivery, DeliveryTarget, OutboxEvent } from '../outbox/consumer.ts';

/** The hex HMAC-SHA256 of `body` with `secret`: the `X-Chatrix-Signature` a receiver recomputes. */
export function signature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * An event's payload in the seed's shape: snake_case names, ids as strings, `kind` as a
 * lower-case `type` and statuses in lower case (`"type": "text"`, `"conversation_id": "4"`).
 */
export function seedData(payload: Record<string, unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload)) {
    const name = key === 'kind' ? 'type' : key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if ((key === 'id' || key.endsWith('Id')) && typeof value === 'number') data[name] = String(value);
    else if ((key === 'kind' || key === 'status') && typeof value === 'string') data[name] = value.toLowerCase();
    else data[name] = value;
  }
  return data;
}

/**
 * Webhooks, in seed 003's format: each event a webhook asked for is a JSON POST of
 * `{event, data, timestamp}` signed with the webhook's secret. The body is fixed when the
 * delivery is stored (its timestamp is the event's), so every retry sends the same bytes with
 * the same `X-Chatrix-Delivery`, and a receiver can drop a delivery it has had.
 */
export function webhookConsumer(sql: pg.Pool, outbound: OutboundPolicy, timeoutMs: number): Consumer {
  return {
    name: 'webhook',
    concurrency: 16,
    async targets(events: OutboxEvent[], db: pg.ClientBase) {
      const { rows: hooks } = await db.query<{ id: number; events: string[] }>('SELECT id, events FROM "Webhook" WHERE active');
      const targets = new Map<number, DeliveryTarget[]>();
      if (hooks.length === 0) return targets;
      for (const event of events) {
        const body = { event: event.type, data: seedData(event.payload), timestamp: event.createdAt.toISOString() };
        const wanted = hooks.filter((h) => h.events.includes(event.type));
        if (wanted.length) targets.set(event.id, wanted.map((h) => ({ target: String(h.id), webhookId: h.id, payload: body })));
      }
      return targets;
    },
    async deliver(delivery: Delivery) {
      const hook = await lookUp(delivery.webhookId);
      if (!hook) return { ok: false, final: true, error: 'The webhook was deleted' };
      if (!hook.active) return { ok: false, final: true, error: 'The webhook is inactive' };
      const body = JSON.stringify(delivery.payload);
      try {
        const status = await outbound.post(
          hook.url,
          body,
          {
            'user-agent': 'chat-backend-webhooks',
            'x-chatrix-signature': signature(hook.secret, body),
            'x-chatrix-event': delivery.event,
            'x-chatrix-delivery': String(delivery.id),
          },
          timeoutMs,
        );
        return status >= 200 && status < 300 ? { ok: true, statusCode: status } : { ok: false, statusCode: status, error: `The receiver answered ${status}` };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    },
  };

  // The webhook as it is now: its URL or secret may have changed since the delivery was stored.
  async function lookUp(id: number | null) {
    if (id === null) return null;
    const { rows } = await sql.query<{ url: string; secret: string; active: boolean }>({
      name: 'webhook-by-id',
      text: 'SELECT url, secret, active FROM "Webhook" WHERE id = $1',
      values: [id],
    });
    return rows[0] ?? null;
  }
}
