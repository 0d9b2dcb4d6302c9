import { graphql } from '../generated/index.ts';
import { code, connectWs, gql, subscribe, type SignedUp } from './clients.ts';
import type { TestServer } from './server.ts';

// Chat operations shared by the conversation, message and live-event suites.
export const MessageFields = graphql(`
  fragment MessageFields on Message {
    id
    seq
    conversationId
    content
    kind
    clientId
    isEdited
    editedAt
    createdAt
    status
    sender {
      id
      username
    }
    replyTo {
      id
      content
    }
    attachments {
      id
    }
  }
`);

export const ConversationFields = graphql(`
  fragment ConversationFields on Conversation {
    id
    kind
    title
    slug
    updatedAt
    unreadCount
    participants {
      id
      username
    }
    members {
      role
      user {
        id
      }
    }
    lastMessage {
      id
      content
    }
  }
`);

export const CreateConversation = graphql(`
  mutation CreateConversation($input: CreateConversationInput!) {
    createConversation(input: $input) {
      ...ConversationFields
    }
  }
`);

export const EnsureDirect = graphql(`
  mutation EnsureDirect($userId: ID!) {
    ensureDirectConversation(userId: $userId) {
      id
      kind
    }
  }
`);

export const GetConversation = graphql(`
  query GetConversation($id: ID!) {
    conversation(id: $id) {
      ...ConversationFields
    }
  }
`);

export const ListConversations = graphql(`
  query ListConversations($first: Int, $after: String) {
    conversations(first: $first, after: $after) {
      edges {
        cursor
        node {
          ...ConversationFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const SendMessage = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      ...MessageFields
    }
  }
`);

export const EditMessage = graphql(`
  mutation EditMessage($id: ID!, $content: String!) {
    editMessage(id: $id, content: $content) {
      ...MessageFields
    }
  }
`);

export const DeleteMessage = graphql(`
  mutation DeleteMessage($id: ID!) {
    deleteMessage(id: $id)
  }
`);

export const History = graphql(`
  query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {
    messages(conversationId: $conversationId, first: $first, after: $after, last: $last, before: $before) {
      edges {
        cursor
        node {
          ...MessageFields
        }
      }
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
    }
  }
`);

export const MarkRead = graphql(`
  mutation MarkRead($conversationId: ID!, $messageId: ID) {
    markConversationRead(conversationId: $conversationId, messageId: $messageId) {
      id
      unreadCount
    }
  }
`);

export const SetTyping = graphql(`
  mutation SetTyping($conversationId: ID!, $isTyping: Boolean!) {
    setTyping(conversationId: $conversationId, isTyping: $isTyping)
  }
`);

export const ConversationEvents = graphql(`
  subscription ConversationEvents($conversationId: ID!) {
    conversationEvents(conversationId: $conversationId) {
      __typename
      ... on MessageAddedEvent {
        message {
          ...MessageFields
        }
      }
      ... on MessageEditedEvent {
        message {
          id
          content
          isEdited
        }
      }
      ... on MessageDeletedEvent {
        messageId
        conversationId
      }
      ... on TypingEvent {
        conversationId
        isTyping
        user {
          id
        }
      }
      ... on ReadReceiptEvent {
        conversationId
        messageId
        readAt
        user {
          id
        }
      }
    }
  }
`);

export const UserEvents = graphql(`
  subscription UserEvents {
    userEvents {
      __typename
      ... on MessageAddedEvent {
        message {
          id
          content
          conversationId
        }
      }
      ... on ConversationUpdatedEvent {
        conversation {
          id
          title
          unreadCount
          lastMessage {
            id
          }
        }
      }
    }
  }
`);

/** A direct conversation between two users, as the first one opens it. */
export async function directBetween(server: Pick<TestServer, 'url'>, a: SignedUp, b: SignedUp): Promise<string> {
  const result = await gql(server, EnsureDirect, { userId: b.id }, a.accessToken);
  if (!result.data) throw new Error(`ensureDirectConversation failed: ${code(result)}`);
  return result.data.ensureDirectConversation.id;
}

export async function send(server: Pick<TestServer, 'url'>, user: SignedUp, conversationId: string, content: string) {
  const result = await gql(server, SendMessage, { input: { conversationId, content } }, user.accessToken);
  if (!result.data) throw new Error(`sendMessage failed: ${JSON.stringify(result.errors)}`);
  return result.data.sendMessage;
}

/** Resolves once `count` more subscriptions to `topic` are live on the server. */
export function listening(server: TestServer, topic: string, count = 1): Promise<void> {
  const { activity } = server.app.services.bus;
  let left = count;
  return new Promise((resolve) => {
    const onListen = (t: string) => {
      if (t !== topic || --left > 0) return;
      activity.off('listen', onListen);
      resolve();
    };
    activity.on('listen', onListen);
  });
}

/**
 * Makes the bus drop the next new message's event on the conversation's topic (its members'
 * own topics still get it), as Redis does with what is published while an instance subscribes
 * again. Returns the function that puts the bus back.
 */
export function loseNextMessageEvent(server: TestServer, conversationId: string): () => void {
  const bus = server.app.services.bus;
  const publish = bus.publish.bind(bus);
  let lost = false;
  const conversationTopic = `conversation:${conversationId}`;
  bus.publish = async (topic, event) => {
    const list = typeof topic === 'string' ? [topic] : topic;
    if (!lost && event.type === 'messageAdded' && list.includes(conversationTopic)) {
      lost = true;
      const others = list.filter((t) => t !== conversationTopic);
      return others.length > 0 ? publish(others, event) : undefined;
    }
    return publish(topic, event);
  };
  return () => (bus.publish = publish);
}

/** A user's `conversationEvents` subscription on `server`, live once this resolves; `first` is its first event. */
export async function watchConversation(server: TestServer, user: SignedUp, conversationId: string) {
  const ws = connectWs(server, user.accessToken);
  const live = listening(server, `conversation:${conversationId}`);
  const events = subscribe(ws, ConversationEvents, { conversationId });
  const first = events.next(); // starts the subscription
  await live;
  return { ws, events, first };
}
