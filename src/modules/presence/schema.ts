import { builder } from '../../schema/builder.ts';
import type { Context } from '../../schema/context.ts';
import { badInput } from '../../lib/errors.ts';
import { topics, type BusEvent, type EventStream } from '../../lib/events.ts';

type PresenceChange = Extract<BusEvent, { type: 'presence' }>;

const PresenceEvent = builder.objectRef<PresenceChange>('PresenceEvent').implement({
  fields: (t) => ({
    user: t.prismaField({
      type: 'User',
      resolve: (query, event, _args, ctx) => ctx.db.user.findUniqueOrThrow({ ...query, where: { id: event.userId } }),
    }),
    isOnline: t.exposeBoolean('isOnline'),
    lastSeenAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (event) => (event.lastSeenAt ? new Date(event.lastSeenAt) : null),
    }),
  }),
});

const MAX_WATCHED = 200;

async function* presenceStream(ctx: Context, ids: number[], changes: EventStream<PresenceChange>): AsyncGenerator<PresenceChange> {
  try {
    const [online, users] = await Promise.all([
      ctx.presence.isOnline(ids),
      ctx.db.user.findMany({ where: { id: { in: ids } }, select: { id: true, lastSeenAt: true } }),
    ]);
    for (const user of users) {
      const isOnline = online[ids.indexOf(user.id)];
      yield { type: 'presence', userId: user.id, isOnline, lastSeenAt: user.lastSeenAt?.toISOString() ?? null };
    }
    yield* changes;
  } finally {
    await changes.return();
  }
}

builder.subscriptionFields((t) => ({
  presence: t.withAuth({ signedIn: true }).field({
    type: PresenceEvent,
    description: 'The current state of each user, then every change (online, or offline with lastSeenAt).',
    args: { userIds: t.arg.idList({ required: true, description: 'The users to watch, at most 200.' }) },
    subscribe: async (_root, { userIds }, ctx) => {
      // Checked before the stream starts, so a bad request is an ordinary GraphQL error.
      const ids = [...new Set(userIds.map(Number))];
      if (ids.length > MAX_WATCHED || ids.some((id) => !Number.isSafeInteger(id))) {
        throw badInput({ userIds: `must be at most ${MAX_WATCHED} numeric user ids` });
      }
      return ctx.bus.stream<PresenceChange>(ids.map(topics.presence), (changes) => presenceStream(ctx, ids, changes));
    },
    resolve: (event) => event,
  }),
}));
