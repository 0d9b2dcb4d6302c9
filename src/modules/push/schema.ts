import { builder } from '../../schema/builder.ts';
import { deletePushSubscription, savePushSubscription } from './service.ts';

const PushSubscriptionInput = builder.inputType('PushSubscriptionInput', {
  fields: (t) => ({
    endpoint: t.string({ required: true, description: "The subscription's endpoint URL." }),
    p256dh: t.string({ required: true, description: "The subscription's keys.p256dh." }),
    auth: t.string({ required: true, description: "The subscription's keys.auth." }),
    userAgent: t.string({ description: 'Which browser this is, to tell your subscriptions apart.' }),
  }),
});

builder.queryFields((t) => ({
  vapidPublicKey: t.string({
    description: 'The application server key for PushManager.subscribe (base64url).',
    resolve: (_root, _args, ctx) => ctx.vapid.publicKey,
  }),
}));

builder.mutationFields((t) => ({
  savePushSubscription: t.withAuth({ signedIn: true }).boolean({
    description: "Registers this browser's web-push subscription (PushManager.subscribe) for your notifications.",
    args: { input: t.arg({ type: PushSubscriptionInput, required: true, description: "The subscription's endpoint and keys, from PushSubscription.toJSON()." }) },
    resolve: (_root, { input }, ctx) => savePushSubscription(ctx, input),
  }),
  deletePushSubscription: t.withAuth({ signedIn: true }).boolean({
    description: 'Stops web push to a subscription, as after PushSubscription.unsubscribe().',
    args: { endpoint: t.arg.string({ required: true, description: "The subscription's endpoint." }) },
    resolve: (_root, { endpoint }, ctx) => deletePushSubscription(ctx, endpoint),
  }),
}));
