import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';
import type { Context, SignedInContext } from './context.ts';
import { forbidden, unauthenticated } from '../lib/errors.ts';
import { fieldCost } from './cost.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { signedIn: boolean; admin: boolean };
  // What a field's resolver may rely on once its scope passed: `t.withAuth({ signedIn: true })`
  // gives it a context whose viewer is not null.
  AuthContexts: { signedIn: SignedInContext; admin: SignedInContext };
  Scalars: {
    ID: { Input: string; Output: string | number };
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    Upload: { Input: unknown; Output: never };
  };
  DefaultFieldNullability: false;
}>({
  // Fields are non-null unless they say otherwise, so clients get precise types.
  defaultFieldNullability: false,
  // scope-auth first, so authorization runs before every other plugin's wrapping.
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ComplexityPlugin],
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({ signedIn: ctx.viewer !== null, admin: ctx.viewer?.role === 'ADMIN' }),
    unauthorizedError: (_parent, ctx) =>
      ctx.viewer ? forbidden() : unauthenticated(ctx.authProblem ?? 'You must be signed in'),
  },
  prisma: {
    client: (ctx) => ctx.db,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  complexity: {
    // Each field's cost is recorded here; graphql/limits.ts measures an operation once before
    // it runs, rather than the plugin re-measuring it in every root resolver.
    disabled: true,
    fieldComplexity: fieldCost,
  },
  relay: {
    // IDs stay the plain database ids (CONTRACT), so no global Node interface.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    clientMutationId: 'omit',
    cursorType: 'String',
    // Every argument carries a description (test/schema-docs.test.ts checks), these four included.
    firstArgOptions: { description: 'Up to this many items from the start, or from after `after`.' },
    afterArgOptions: { description: "Items after this cursor: an edge's `cursor` or `pageInfo.endCursor`." },
    lastArgOptions: { description: 'Up to this many items from the end, or from before `before` (lists read forward only refuse it).' },
    beforeArgOptions: { description: "Items before this cursor: an edge's `cursor` or `pageInfo.startCursor`." },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);
builder.queryType();
builder.mutationType();
builder.subscriptionType();
