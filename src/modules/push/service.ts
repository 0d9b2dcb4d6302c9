import { z } from 'zod';
import type { SignedInContext } from '../../schema/context.ts';
import { notFound } from '../../lib/errors.ts';
import { parseInput } from '../../lib/validation.ts';

/**
 * Browser push subscriptions (the Web Push API's PushSubscription). They are stored per user;
 * an endpoint belongs to one browser, so saving it again moves it to whoever saved it last.
 */
const subscriptionRules = z.object({
  endpoint: z.string().trim().url('must be a URL').max(2048).refine((u) => u.startsWith('https://'), 'must be an https URL'),
  p256dh: z.string().trim().min(1, 'is required').max(512),
  auth: z.string().trim().min(1, 'is required').max(512),
  userAgent: z.string().max(512).nullish(),
});

export async function savePushSubscription(ctx: SignedInContext, input: unknown): Promise<boolean> {
  const userId = ctx.viewer.id;
  const data = parseInput(subscriptionRules, input);
  const fields = { userId, p256dh: data.p256dh, auth: data.auth, userAgent: data.userAgent ?? null };
  await ctx.db.pushSubscription.upsert({ where: { endpoint: data.endpoint }, create: { endpoint: data.endpoint, ...fields }, update: fields });
  return true;
}

export async function deletePushSubscription(ctx: SignedInContext, endpoint: string): Promise<boolean> {
  const userId = ctx.viewer.id;
  const { count } = await ctx.db.pushSubscription.deleteMany({ where: { endpoint: endpoint.trim(), userId } });
  if (count === 0) throw notFound('Push subscription');
  return true;
}
