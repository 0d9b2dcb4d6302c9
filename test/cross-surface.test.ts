import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../src/lib/events.ts';
import { connectWs, nextEvent, signUp, subscribe, type WsConnection } from './helpers/clients.ts';
import { ConversationEvents, listening } from './helpers/chat.ts';
import { connectIo, nextIo } from './helpers/sockets.ts';
import { startServer, uniqueName, usingServices, type TestServer } from './helpers/server.ts';

// With PostgreSQL and Redis the sender and the receivers are on two instances; the embedded
// run has one instance, where the same scenario proves the surfaces agree.
const where = usingServices ? 'two instances sharing Redis' : 'one embedded instance';

describe(`one message, every surface (${where})`, () => {
  let sending: TestServer;
  let receiving: TestServer;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    sending = await startServer({ AUTH_PASSWORDLESS_EMAIL_LOGIN: 'true' });
    receiving = usingServices ? await startServer({ AUTH_PASSWORDLESS_EMAIL_LOGIN: 'true' }) : sending;
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await sending?.stop();
    if (receiving !== sending) await receiving?.stop();
  });

  it('a message sent through chattrix REST reaches a GraphQL subscriber, a socket-chat socket and a flask-chat socket', async () => {
    // The sender uses chattrix (cookie session); the receiver uses GraphQL and socket-chat.
    const sender = { username: uniqueName('cx'), password: 'chattrix password', email: `${uniqueName('cx')}@example.com` };
    const receiverEmail = `${uniqueName('rx')}@example.com`;
    const receiver = await signUp(receiving, { email: receiverEmail });
    const chattrix = (path: string, init: RequestInit = {}) =>
      fetch(`${sending.url}/chattrix${path}`, {
        ...init,
        headers: { 'content-type': 'application/json', 'x-requested-with': 'XMLHttpRequest', ...(init.headers as Record<string, string>) },
      });
    expect((await chattrix('/register', { method: 'POST', body: JSON.stringify({ ...sender, display_name: 'Chattrix Sender' }) })).status).toBe(201);
    const login = await chattrix('/login', { method: 'POST', body: JSON.stringify({ username: sender.username, password: sender.password }) });
    expect(login.status).toBe(200);
    const session = login.headers.getSetCookie().find((c) => c.startsWith('session='))!.split(';')[0];
    const withSession = { cookie: session };
    const created = await chattrix('/api/conversations', {
      method: 'POST',
      headers: withSession,
      body: JSON.stringify({ type: 'private', participant_ids: [Number(receiver.id)] }),
    });
    expect(created.status).toBe(201);
    const conversationId = String((await created.json()).conversation.id);

    // The receiver listens on the other instance: a graphql-ws subscription…
    const ws: WsConnection = connectWs(receiving, receiver.accessToken);
    closers.push(() => ws.client.dispose());
    const subscribed = listening(receiving, topics.conversation(conversationId));
    const events = subscribe(ws, ConversationEvents, { conversationId });
    await subscribed;
    // …and a socket-chat socket, signed in with the same account's email and password.
    const socketChatLogin = await fetch(`${receiving.url}/socket-chat/api/auth/login`, {
      method: 'POST',
      body: new URLSearchParams({ email: receiverEmail, password: receiver.password }),
    });
    expect(socketChatLogin.status).toBe(200);
    const userTopic = listening(receiving, topics.user(receiver.id));
    const socket: Socket = await connectIo(`${receiving.url}/socket-chat`, { auth: { token: (await socketChatLogin.json()).access_token } });
    closers.push(() => socket.close());
    await userTopic;
    const onSocket = nextIo(socket, 'new_message');
    // …and a flask-chat socket, with the same access token (every surface shares them).
    const flaskTopic = listening(receiving, topics.user(receiver.id));
    const flask: Socket = await connectIo(`${receiving.url}/flask-chat`, { auth: { token: receiver.accessToken } });
    closers.push(() => flask.close());
    await flaskTopic;
    const onFlask = nextIo(flask, 'new_private_message');

    const sent = await chattrix(`/api/conversations/${conversationId}/messages`, {
      method: 'POST',
      headers: withSession,
      body: JSON.stringify({ content: 'from chattrix', type: 'text' }),
    });
    expect(sent.status).toBe(201);
    const { message_data } = await sent.json();

    const event = await nextEvent(events, 'the message over graphql-ws');
    expect(event.data!.conversationEvents).toMatchObject({
      __typename: 'MessageAddedEvent',
      message: { id: String(message_data.id), content: 'from chattrix', sender: { username: sender.username } },
    });
    expect(await onSocket).toMatchObject({
      id: String(message_data.id),
      conversation_id: conversationId,
      sender_email: sender.username, // a chattrix account keeps its email private
      message: 'from chattrix',
      message_type: 'text',
    });
    expect(await onFlask).toEqual({
      id: message_data.id,
      content: 'from chattrix',
      timestamp: message_data.timestamp,
      sender: { id: message_data.sender_id, username: sender.username },
      username: sender.username,
    });

  });
});
