import { builder } from './builder.ts';
import '../modules/users/schema.ts';
import '../modules/auth/schema.ts';
import '../modules/admin/schema.ts';
import '../modules/presence/schema.ts';
import '../modules/files/schema.ts';
import '../modules/messages/schema.ts';
import '../modules/conversations/schema.ts';
import '../modules/calls/schema.ts';
import '../modules/push/schema.ts';
import '../modules/conversations/subscriptions.ts';

export const schema = builder.toSchema({ sortSchema: true });
