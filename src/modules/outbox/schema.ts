import { builder } from '../../schema/builder.ts';
import { notFound } from '../../lib/errors.ts';
import { parseDatabaseId } from '../../lib/ids.ts';

const DeliveryStatus = builder.enumType('DeliveryStatus', {
  description: 'PENDING: not delivered yet (retrying); DELIVERED; DEAD: given up after too many tries (replayable).',
  values: ['PENDING', 'DELIVERED', 'DEAD'] as const,
});

builder.prismaObject('EventDelivery', {
  description: "One event on its way to one consumer's target (a webhook, a push subscription, the MQTT broker).",
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Also the X-Chatrix-Delivery header of a webhook delivery, the same on every retry.' }),
    consumer: t.exposeString('consumer', { description: '`webhook`, `push` or `mqtt`.' }),
    event: t.exposeString('event', { description: 'The event, e.g. `message.created`.' }),
    status: t.field({ type: DeliveryStatus, resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts', { description: 'Tries so far.' }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: "The receiver's last HTTP status, if it answered." }),
    error: t.exposeString('error', { nullable: true, description: 'Why the last try failed.' }),
    payload: t.expose('payload', { type: 'JSON', description: 'What is sent (for a webhook, the exact body).' }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', description: 'When a pending delivery is tried next.' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  deadDeliveries: t.withAuth({ admin: true }).prismaConnection({
    type: 'EventDelivery',
    cursor: 'id',
    description: 'Admins: deliveries given up after too many tries (webhooks, push, MQTT), newest first; replay them with replayDelivery.',
    defaultSize: 20,
    maxSize: 100,
    args: { consumer: t.arg.string({ description: 'Only this consumer’s: `webhook`, `push` or `mqtt`.' }) },
    resolve: (query, _root, { consumer }, ctx) =>
      ctx.db.eventDelivery.findMany({ ...query, where: { status: 'DEAD', ...(consumer ? { consumer } : {}) }, orderBy: { id: 'desc' } }),
  }),
}));

builder.mutationFields((t) => ({
  replayDelivery: t.withAuth({ admin: true }).prismaField({
    type: 'EventDelivery',
    description: 'Admins: sends a delivery again (a dead one, or one delivered already), as soon as its turn comes, with the same id.',
    args: { id: t.arg.id({ required: true, description: 'The delivery.' }) },
    resolve: async (query, _root, { id }, ctx) => {
      const deliveryId = parseDatabaseId(id);
      if (deliveryId === null) throw notFound('Delivery');
      await ctx.outbox.replay(deliveryId);
      const delivery = await ctx.db.eventDelivery.findUnique({ ...query, where: { id: deliveryId } });
      if (!delivery) throw notFound('Delivery');
      return delivery;
    },
  }),
}));
