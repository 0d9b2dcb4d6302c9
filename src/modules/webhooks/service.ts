import { z } from 'zod';
import type { Webhook } from '../../generated/prisma/client.ts';
import type { SignedInContext } from '../../schema/context.ts';
import { badInput, notFound } from '../../lib/errors.ts';
import type { OutboundPolicy } from '../../lib/outbound-http.ts';
import { parseDatabaseId } from '../../lib/ids.ts';
import { parseInput } from '../../lib/validation.ts';

/** The events a webhook can ask for: seed 003's list ("Available Webhooks"). */
export const WEBHOOK_EVENTS = [
  'message.created',
  'message.updated',
  'message.deleted',
  'user.registered',
  'user.updated',
  'user.deleted',
  'post.created',
  'post.updated',
  'post.deleted',
  'comment.created',
  'comment.updated',
  'comment.deleted',
  'like.created',
  'like.deleted',
  'follow.created',
  'follow.deleted',
  'follow.accepted',
  'story.created',
  'story.viewed',
  'story.deleted',
  'call.started',
  'call.answered',
  'call.ended',
] as const;

const eventList = z
  .array(z.string())
  .min(1, 'must name at least one event')
  .max(WEBHOOK_EVENTS.length)
  .superRefine((events, ctx) => {
    const unknown = events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown event(s): ${unknown.join(', ')}; known: ${WEBHOOK_EVENTS.join(', ')}` });
  })
  .transform((events) => [...new Set(events)]);

const fields = {
  url: z.string().trim().max(2048, 'must be at most 2048 characters'),
  events: eventList,
  // The receiver checks X-Chatrix-Signature with it: too short a secret can be guessed.
  secret: z.string().min(16, 'must be at least 16 characters').max(256, 'must be at most 256 characters'),
  active: z.boolean(),
};
const createRules = z.object({ url: fields.url, events: fields.events, secret: fields.secret, active: fields.active.nullish() });
const updateRules = z.object({
  url: fields.url.nullish(),
  events: fields.events.nullish(),
  secret: fields.secret.nullish(),
  active: fields.active.nullish(),
});

async function checkUrl(outbound: OutboundPolicy, url: string): Promise<string> {
  const refused = await outbound.checkUrl(url);
  if (refused) throw badInput({ url: refused });
  return url;
}

export async function createWebhook(ctx: SignedInContext, input: unknown): Promise<Webhook> {
  const data = parseInput(createRules, input);
  const url = await checkUrl(ctx.outbound, data.url);
  return ctx.db.webhook.create({ data: { ownerId: ctx.viewer.id, url, events: data.events, secret: data.secret, active: data.active ?? true } });
}

export async function webhookById(ctx: SignedInContext, id: string | number): Promise<Webhook> {
  const webhookId = parseDatabaseId(id);
  const webhook = webhookId ? await ctx.db.webhook.findUnique({ where: { id: webhookId } }) : null;
  if (!webhook) throw notFound('Webhook');
  return webhook;
}

export async function updateWebhook(ctx: SignedInContext, id: string, input: unknown): Promise<Webhook> {
  const webhook = await webhookById(ctx, id);
  const data = parseInput(updateRules, input);
  const url = data.url != null ? await checkUrl(ctx.outbound, data.url) : undefined;
  return ctx.db.webhook.update({
    where: { id: webhook.id },
    data: { url, events: data.events ?? undefined, secret: data.secret ?? undefined, active: data.active ?? undefined },
  });
}

export async function deleteWebhook(ctx: SignedInContext, id: string): Promise<boolean> {
  const webhook = await webhookById(ctx, id);
  await ctx.db.webhook.delete({ where: { id: webhook.id } });
  return true;
}

declare module '../../services/services.ts' {
  interface Services {
    /** Where this server may send requests its users asked for (webhooks). */
    outbound: OutboundPolicy;
  }
}
