import { builder } from '../../schema/builder.ts';
import { createWebhook, deleteWebhook, updateWebhook, webhookById, WEBHOOK_EVENTS } from './service.ts';

builder.prismaObject('Webhook', {
  description: 'An endpoint that receives signed JSON POSTs of the events it asked for (seed 003 format).',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url', { description: 'Where deliveries are POSTed.' }),
    events: t.exposeStringList('events', { description: `The events it receives, among: ${WEBHOOK_EVENTS.join(', ')}.` }),
    active: t.exposeBoolean('active', { description: 'An inactive webhook receives nothing; its pending deliveries end.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const WebhookInput = builder.inputType('WebhookInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'An http(s) URL on a public address (private ones only if WEBHOOK_ALLOWED_NETWORKS allows them).' }),
    events: t.stringList({ required: true, description: `Events to receive, among: ${WEBHOOK_EVENTS.join(', ')}.` }),
    secret: t.string({ required: true, description: 'At least 16 characters: the key of the X-Chatrix-Signature HMAC.' }),
    active: t.boolean({ description: 'Whether it receives events (default true).' }),
  }),
});

const WebhookUpdate = builder.inputType('WebhookUpdateInput', {
  fields: (t) => ({
    url: t.string({ description: 'A new URL, with the same rules.' }),
    events: t.stringList({ description: 'The new list of events.' }),
    secret: t.string({ description: 'A new secret: deliveries from now on are signed with it.' }),
    active: t.boolean({ description: 'Pause (false) or resume (true).' }),
  }),
});

builder.queryFields((t) => ({
  webhooks: t.withAuth({ admin: true }).prismaField({
    type: ['Webhook'],
    description: 'Admins: every webhook.',
    resolve: (query, _root, _args, ctx) => ctx.db.webhook.findMany({ ...query, orderBy: { id: 'asc' } }),
  }),
  webhookDeliveries: t.withAuth({ admin: true }).prismaConnection({
    type: 'EventDelivery',
    cursor: 'id',
    description: "Admins: a webhook's delivery log, newest first.",
    defaultSize: 20,
    maxSize: 100,
    args: { webhookId: t.arg.id({ required: true, description: 'The webhook.' }) },
    resolve: async (query, _root, { webhookId }, ctx) => {
      const webhook = await webhookById(ctx, webhookId);
      return ctx.db.eventDelivery.findMany({ ...query, where: { webhookId: webhook.id }, orderBy: { id: 'desc' } });
    },
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.withAuth({ admin: true }).prismaField({
    type: 'Webhook',
    description: 'Admins: registers an endpoint for the events it names.',
    args: { input: t.arg({ type: WebhookInput, required: true, description: 'The URL, events and secret.' }) },
    resolve: (_query, _root, { input }, ctx) => createWebhook(ctx, input),
  }),
  updateWebhook: t.withAuth({ admin: true }).prismaField({
    type: 'Webhook',
    description: 'Admins: changes a webhook; fields left out stay as they are.',
    args: {
      id: t.arg.id({ required: true, description: 'The webhook.' }),
      input: t.arg({ type: WebhookUpdate, required: true, description: 'The fields to change.' }),
    },
    resolve: (_query, _root, { id, input }, ctx) => updateWebhook(ctx, id, input),
  }),
  deleteWebhook: t.withAuth({ admin: true }).boolean({
    description: 'Admins: removes a webhook and its delivery log.',
    args: { id: t.arg.id({ required: true, description: 'The webhook.' }) },
    resolve: (_root, { id }, ctx) => deleteWebhook(ctx, id),
  }),
}));
