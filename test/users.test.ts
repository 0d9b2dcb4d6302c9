import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, gql, signUp, type SignedUp } from './helpers/clients.ts';
import { Me } from './helpers/operations.ts';
import { startServer, uniqueName, type TestServer } from './helpers/server.ts';

const UserQuery = graphql(`
  query UserById($id: ID, $username: String) {
    user(id: $id, username: $username) {
      id
      username
      email
      phone
      role
      settings
      isOnline
    }
  }
`);

const Users = graphql(`
  query Users($search: String, $first: Int, $after: String) {
    users(search: $search, first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          username
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const UpdateProfile = graphql(`
  mutation UpdateProfile($input: UpdateProfileInput!) {
    updateProfile(input: $input) {
      id
      displayName
      bio
      website
      avatarUrl
      isPrivate
      settings
    }
  }
`);

let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;

beforeAll(async () => {
  server = await startServer();
  alice = await signUp(server, { email: `${uniqueName()}@example.com`, phone: `+3361${String(Date.now()).slice(-7)}` });
  bob = await signUp(server);
});
afterAll(() => server?.stop());

describe('user lookups', () => {
  it('finds a user by id or username, hiding private fields from others', async () => {
    const byId = await gql(server, UserQuery, { id: alice.id }, bob.accessToken);
    expect(byId.data!.user).toMatchObject({ id: alice.id, username: alice.username, email: null, phone: null, role: null, settings: null });
    const byName = await gql(server, UserQuery, { username: alice.username.toUpperCase() }, bob.accessToken);
    expect(byName.data!.user!.id).toBe(alice.id);
    const own = await gql(server, UserQuery, { id: alice.id }, alice.accessToken);
    expect(own.data!.user!.email).toMatch(/@example\.com$/);
    expect(own.data!.user!.phone).toMatch(/^\+3361/);
    expect(own.data!.user!.role).toBe('USER');
  });

  it('answers null for an unknown user and refuses anonymous lookups', async () => {
    expect((await gql(server, UserQuery, { id: '99999999' }, bob.accessToken)).data!.user).toBeNull();
    expect(code(await gql(server, UserQuery, { id: alice.id }))).toBe('UNAUTHENTICATED');
  });

  it('searches users and pages through them with cursors', async () => {
    const tag = uniqueName('srch');
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await signUp(server, { username: `${tag}_${i}` }));
    const seen: string[] = [];
    let after: string | null | undefined;
    for (;;) {
      const page = await gql(server, Users, { search: tag, first: 2, after }, bob.accessToken);
      expect(page.errors).toBeUndefined();
      seen.push(...page.data!.users.edges.map((e) => e.node.username));
      if (!page.data!.users.pageInfo.hasNextPage) break;
      after = page.data!.users.pageInfo.endCursor;
    }
    expect(seen).toEqual(made.map((u) => u.username));
  });
});

describe('updateProfile', () => {
  it('changes the given fields, clears nulls and merges settings', async () => {
    const user = await signUp(server);
    const first = await gql(server, UpdateProfile, {
      input: { displayName: '  Zoë  ', bio: 'Hello <b>there</b>', website: 'https://example.com', settings: { theme: 'dark' } },
    }, user.accessToken);
    expect(first.errors).toBeUndefined();
    expect(first.data!.updateProfile).toMatchObject({ displayName: 'Zoë', bio: 'Hello <b>there</b>', website: 'https://example.com', settings: { theme: 'dark' } });

    const second = await gql(server, UpdateProfile, { input: { bio: null, isPrivate: true, settings: { lang: 'fr' } } }, user.accessToken);
    expect(second.data!.updateProfile).toMatchObject({ displayName: 'Zoë', bio: null, isPrivate: true, settings: { theme: 'dark', lang: 'fr' } });
    const me = await gql(server, Me, undefined, user.accessToken);
    expect(me.data!.me).toMatchObject({ displayName: 'Zoë', isPrivate: true, settings: { theme: 'dark', lang: 'fr' } });
  });

  it.each([
    ['website', { website: 'javascript:alert(1)' }],
    ['avatarUrl', { avatarUrl: 'not a url' }],
    ['displayName', { displayName: 'x'.repeat(65) }],
    ['bio', { bio: 'x'.repeat(501) }],
    ['settings', { settings: ['not', 'an', 'object'] }],
  ])('refuses a bad %s and keeps what was stored', async (field, input) => {
    const user = await signUp(server, { displayName: 'Kept' });
    const result = await gql(server, UpdateProfile, { input }, user.accessToken);
    expect(code(result)).toBe('BAD_USER_INPUT');
    expect(Object.keys(result.errors![0].extensions!.fields!)).toEqual([field]);
    expect((await gql(server, Me, undefined, user.accessToken)).data!.me!.displayName).toBe('Kept');
  });

  it('requires a signed-in user', async () => {
    expect(code(await gql(server, UpdateProfile, { input: { bio: 'x' } }))).toBe('UNAUTHENTICATED');
  });
});
