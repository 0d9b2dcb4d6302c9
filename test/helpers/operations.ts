import { graphql } from '../generated/index.ts';

// Operations several test files use; codegen types them from schema.graphql.
export const UserFields = graphql(`
  fragment UserFields on User {
    id
    username
    displayName
    avatarUrl
    bio
    website
    isPrivate
    isOnline
    lastSeenAt
    createdAt
    email
    phone
    role
    settings
  }
`);

export const Register = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      accessToken
      refreshToken
      user {
        ...UserFields
      }
    }
  }
`);

export const Login = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      accessToken
      refreshToken
      user {
        id
        username
      }
    }
  }
`);

export const Me = graphql(`
  query Me {
    me {
      ...UserFields
    }
  }
`);

export const Presence = graphql(`
  subscription Presence($userIds: [ID!]!) {
    presence(userIds: $userIds) {
      isOnline
      lastSeenAt
      user {
        id
        username
      }
    }
  }
`);

export const BanUser = graphql(`
  mutation BanUser($id: ID!) {
    banUser(id: $id) {
      id
      status
    }
  }
`);
