import { builder } from '../../graphql/builder.ts';
import { deletePushSubscription, savePushSubscription } from './service.ts';

const PushSubscriptionInput = builder.inputType('PushSubscriptionInput', {
  fields: (t) => ({
    endpoint: t.string({ required: true }),
    p256dh: t.string({ required: true, description: "The subscription's keys.p256dh." }),
    auth: t.string({ required: true, description: "The subscription's keys.auth." }),
    userAgent: t.string(),
  }),
});

builder.queryFields((t) => ({
  vapidPublicKey: t.string({
    description: 'The application server key for PushManager.subscribe (base64url).',
    resolve: (_root, _args, ctx) => ctx.vapid.publicKey,
  }),
}));

builder.mutationFields((t) => ({
  savePushSubscription: t.boolean({
    authScopes: { signedIn: true },
    args: { input: t.arg({ type: PushSubscriptionInput, required: true }) },
    resolve: (_root, { input }, ctx) => savePushSubscription(ctx, input),
  }),
  deletePushSubscription: t.boolean({
    authScopes: { signedIn: true },
    args: { endpoint: t.arg.string({ required: true }) },
    resolve: (_root, { endpoint }, ctx) => deletePushSubscription(ctx, endpoint),
  }),
}));
