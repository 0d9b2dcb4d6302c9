import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * What GraphiQL opens on in a new tab: a first session from signing up to a live event, in
 * the order a newcomer needs it. Its operations run as they are (test/graphiql.test.ts runs
 * them), so keep it valid against the schema when a field changes.
 */
export const GRAPHIQL_DEFAULT_DOCUMENT = `# Welcome to the Chat API.
#
# This document holds several operations: put the cursor in one and press
# Run (Ctrl-Enter), or pick one from the Run button's menu.
#
# 1. Run SignUp (pick your own username), or SignIn for an account you have.
#    Copy the accessToken from its result.
# 2. Open the Headers tab below the editor and paste the token there:
#      { "Authorization": "Bearer <accessToken>" }
#    Every operation in this tab, subscriptions included, then runs as you.
#    A token lasts 15 minutes (ACCESS_TOKEN_TTL); refreshToken(refreshToken:)
#    trades the refreshToken for a new pair.
# 3. Run Me, then the others. The Docs pane (the book icon) describes every
#    field and argument.

mutation SignUp {
  register(input: { username: "alice", password: "correct horse battery" }) {
    accessToken
    refreshToken
    user { id username }
  }
}

mutation SignIn {
  login(input: { identifier: "alice", password: "correct horse battery" }) {
    accessToken
    refreshToken
    user { id username }
  }
}

query Me {
  me { id username displayName isOnline }
}

# The room every signed-in user can read and post in (id 1 on a new server).
query GeneralRoom {
  publicRoom(slug: "general") { id title }
}

query MyConversations {
  conversations(first: 20) {
    edges { node { id kind title unreadCount lastMessage { content sender { username } } } }
  }
}

# Live events of a conversation (use the id GeneralRoom gave). Run it here,
# then open a second tab (+), paste the same Headers there and run SayHello
# from it: the message arrives in this tab.
subscription RoomEvents {
  conversationEvents(conversationId: "1") {
    __typename
    ... on MessageAddedEvent { message { id content sender { username } createdAt } }
    ... on TypingEvent { user { username } isTyping }
  }
}

mutation SayHello {
  sendMessage(input: { conversationId: "1", content: "Hello from GraphiQL" }) {
    id seq content createdAt
  }
}
`;

/**
 * GraphiQL as served at /graphql to a browser. Subscriptions go over graphql-ws, where the
 * Headers tab's Authorization signs them in (transports/graphql-ws.ts).
 */
export const graphiqlOptions: GraphiQLOptions = {
  title: 'Chat API',
  subscriptionsProtocol: 'WS',
  defaultQuery: GRAPHIQL_DEFAULT_DOCUMENT,
};
