import { builder } from './builder.ts';
import '../modules/users/schema.ts';
import '../modules/auth/schema.ts';
import '../modules/admin/schema.ts';
import '../modules/presence/schema.ts';

export const schema = builder.toSchema({ sortSchema: true });
