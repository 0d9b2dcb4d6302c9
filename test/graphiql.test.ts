import { Kind, parse, specifiedRules, validate, type OperationDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/server.ts';
import { GRAPHIQL_DEFAULT_DOCUMENT } from '../src/graphql/graphiql.ts';
import { schema } from '../src/graphql/schema.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.stop());

describe("GraphiQL's default document", () => {
  const operations = parse(GRAPHIQL_DEFAULT_DOCUMENT).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

  it('is what the page opens on', async () => {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await res.text()).toContain(JSON.stringify(GRAPHIQL_DEFAULT_DOCUMENT));
  });

  it('signs in, queries and subscribes with valid operations, and says where the token goes', () => {
    expect(validate(schema, parse(GRAPHIQL_DEFAULT_DOCUMENT), specifiedRules)).toEqual([]);
    const rootFields = (kind: string) =>
      operations.filter((o) => o.operation === kind).flatMap((o) => o.selectionSet.selections.map((s) => (s.kind === Kind.FIELD ? s.name.value : '')));
    expect(rootFields('mutation')).toEqual(expect.arrayContaining(['register', 'login', 'sendMessage']));
    expect(rootFields('query')).toEqual(expect.arrayContaining(['me']));
    expect(rootFields('subscription')).toEqual(['conversationEvents']);
    expect(GRAPHIQL_DEFAULT_DOCUMENT).toMatch(/^#.*Headers tab/m);
    expect(GRAPHIQL_DEFAULT_DOCUMENT).toMatch(/^#.*"Authorization": "Bearer <accessToken>"/m);
  });
});
