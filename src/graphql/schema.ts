import { rewireTypes } from '@graphql-tools/utils';
import { GraphQLSchema, type GraphQLObjectType } from 'graphql';
import { builder } from '../schema/builder.ts';
import { DatabaseID } from '../schema/ids.ts';
import '../modules/users/schema.ts';
import '../modules/auth/schema.ts';
import '../modules/admin/schema.ts';
import '../modules/presence/schema.ts';
import '../modules/files/schema.ts';
import '../modules/messages/schema.ts';
import '../modules/conversations/schema.ts';
import '../modules/calls/schema.ts';
import '../modules/push/schema.ts';
import '../modules/outbox/schema.ts';
import '../modules/webhooks/schema.ts';
import '../modules/live/subscriptions.ts';

const built = builder.toSchema({ sortSchema: true });

// Pothos always uses graphql's own ID scalar; every reference to it is pointed at ours, so ids
// are checked where they enter (graphql/ids.ts).
const { typeMap, directives } = rewireTypes({ ...built.getTypeMap(), ID: DatabaseID }, built.getDirectives());
export const schema = new GraphQLSchema({
  ...built.toConfig(),
  query: typeMap.Query as GraphQLObjectType,
  mutation: typeMap.Mutation as GraphQLObjectType,
  subscription: typeMap.Subscription as GraphQLObjectType,
  types: Object.values(typeMap),
  directives,
});
