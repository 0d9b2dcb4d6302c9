import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, connectWs, gql, nextEvent, signUp, subscribe, type SignedUp, type WsConnection } from './helpers/clients.ts';
import { listening } from './helpers/chat.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Exported only so the compiler sees it used: the operations below spread it by name.
export const CallFields = graphql(`
  fragment CallFields on Call {
    id
    kind
    status
    caller {
      id
    }
    callee {
      id
    }
    startedAt
    answeredAt
    endedAt
    duration
  }
`);

const StartCall = graphql(`
  mutation StartCall($input: StartCallInput!) {
    startCall(input: $input) {
      ...CallFields
    }
  }
`);
const AnswerCall = graphql(`
  mutation AnswerCall($id: ID!, $answer: JSON!) {
    answerCall(id: $id, answer: $answer) {
      ...CallFields
    }
  }
`);
const RejectCall = graphql(`
  mutation RejectCall($id: ID!) {
    rejectCall(id: $id) {
      ...CallFields
    }
  }
`);
const EndCall = graphql(`
  mutation EndCall($id: ID!) {
    endCall(id: $id) {
      ...CallFields
    }
  }
`);
const Signal = graphql(`
  mutation Signal($id: ID!, $signal: JSON!) {
    sendCallSignal(id: $id, signal: $signal)
  }
`);
const CallHistory = graphql(`
  query CallHistory($first: Int, $after: String) {
    calls(first: $first, after: $after) {
      edges {
        node {
          id
          status
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);
const CallEvents = graphql(`
  subscription CallEvents {
    userEvents {
      ... on CallEvent {
        action
        signal
        call {
          id
          status
          duration
        }
      }
    }
  }
`);

const offer = { type: 'offer', sdp: 'v=0 offer' };
const answer = { type: 'answer', sdp: 'v=0 answer' };

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ CALL_RING_TIMEOUT: '2' });
});
afterAll(() => server?.stop());

/** A user with a live `userEvents` subscription, as a calling app keeps one. */
async function online(user: SignedUp) {
  const ws: WsConnection = connectWs(server, user.accessToken);
  const live = listening(server, `user:${user.id}`);
  const events = subscribe(ws, CallEvents);
  // The first `next()` starts the subscription; it is live once the server listens.
  let first: Promise<IteratorResult<unknown>> | undefined = events.next();
  await live;
  return {
    ws,
    async next() {
      const result = first ? (await first).value : await nextEvent(events, 'call event');
      first = undefined;
      return (result as { data: { userEvents: { action: string; signal: unknown; call: { id: string; status: string; duration: number | null } } } }).data.userEvents;
    },
  };
}

async function pair() {
  const [caller, callee] = await Promise.all([signUp(server), signUp(server)]);
  return { caller, callee, callerLine: await online(caller), calleeLine: await online(callee) };
}

describe('a call', () => {
  it('rings with the offer, is answered with the answer, relays signals, and ends with a duration', async () => {
    const { caller, callee, callerLine, calleeLine } = await pair();
    const started = await gql(server, StartCall, { input: { calleeId: callee.id, kind: 'VIDEO', offer } }, caller.accessToken);
    expect(started.data!.startCall).toMatchObject({ status: 'RINGING', kind: 'VIDEO', caller: { id: caller.id }, callee: { id: callee.id }, duration: null });
    const id = started.data!.startCall.id;
    expect(await calleeLine.next()).toEqual({ action: 'INCOMING', signal: offer, call: { id, status: 'RINGING', duration: null } });
    expect((await callerLine.next()).action).toBe('INCOMING');

    const answered = await gql(server, AnswerCall, { id, answer }, callee.accessToken);
    expect(answered.data!.answerCall.status).toBe('IN_PROGRESS');
    expect(answered.data!.answerCall.answeredAt).not.toBeNull();
    expect(await callerLine.next()).toEqual({ action: 'ANSWERED', signal: answer, call: { id, status: 'IN_PROGRESS', duration: null } });
    await calleeLine.next();

    const candidate = { candidate: 'candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host', sdpMid: '0' };
    expect((await gql(server, Signal, { id, signal: candidate }, caller.accessToken)).data!.sendCallSignal).toBe(true);
    expect(await calleeLine.next()).toMatchObject({ action: 'SIGNAL', signal: candidate });

    const ended = await gql(server, EndCall, { id }, callee.accessToken);
    expect(ended.data!.endCall).toMatchObject({ status: 'ENDED' });
    expect(ended.data!.endCall.duration).toBeGreaterThanOrEqual(0);
    expect(await callerLine.next()).toMatchObject({ action: 'ENDED', call: { id, status: 'ENDED' } });

    expect(code(await gql(server, EndCall, { id }, caller.accessToken))).toBe('CONFLICT');
    expect(code(await gql(server, Signal, { id, signal: candidate }, caller.accessToken))).toBe('CONFLICT');
    const history = await gql(server, CallHistory, { first: 10 }, caller.accessToken);
    expect(history.data!.calls.edges.map((e) => e.node)).toEqual([{ id, status: 'ENDED' }]);
    await Promise.all([callerLine.ws.client.dispose(), calleeLine.ws.client.dispose()]);
  });

  it('can be rejected by the callee, and only by the callee', async () => {
    const { caller, callee, callerLine, calleeLine } = await pair();
    const id = (await gql(server, StartCall, { input: { calleeId: callee.id, kind: 'AUDIO', offer } }, caller.accessToken)).data!.startCall.id;
    expect(code(await gql(server, RejectCall, { id }, caller.accessToken))).toBe('FORBIDDEN');
    const rejected = await gql(server, RejectCall, { id }, callee.accessToken);
    expect(rejected.data!.rejectCall).toMatchObject({ status: 'REJECTED', duration: 0 });
    await callerLine.next(); // INCOMING
    expect(await callerLine.next()).toMatchObject({ action: 'REJECTED', call: { status: 'REJECTED' } });
    expect(code(await gql(server, AnswerCall, { id, answer }, callee.accessToken))).toBe('CONFLICT');
    await Promise.all([callerLine.ws.client.dispose(), calleeLine.ws.client.dispose()]);
  });

  it('becomes MISSED when nobody answers in time', async () => {
    const { caller, callee, callerLine, calleeLine } = await pair();
    const id = (await gql(server, StartCall, { input: { calleeId: callee.id, kind: 'AUDIO', offer } }, caller.accessToken)).data!.startCall.id;
    await calleeLine.next(); // INCOMING
    expect(await calleeLine.next()).toEqual({ action: 'MISSED', signal: null, call: { id, status: 'MISSED', duration: 0 } });
    expect(code(await gql(server, AnswerCall, { id, answer }, callee.accessToken))).toBe('CONFLICT');
    await Promise.all([callerLine.ws.client.dispose(), calleeLine.ws.client.dispose()]);
  });

  it('is refused as busy when either party is already in a call', async () => {
    const [a, b, c] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    const first = await gql(server, StartCall, { input: { calleeId: b.id, kind: 'AUDIO', offer } }, a.accessToken);
    const toBusy = await gql(server, StartCall, { input: { calleeId: b.id, kind: 'AUDIO', offer } }, c.accessToken);
    expect(code(toBusy)).toBe('CONFLICT');
    expect(toBusy.errors![0].extensions!.reason).toBe('BUSY');
    const fromBusy = await gql(server, StartCall, { input: { calleeId: c.id, kind: 'AUDIO', offer } }, a.accessToken);
    expect(code(fromBusy)).toBe('CONFLICT');
    await gql(server, EndCall, { id: first.data!.startCall.id }, a.accessToken);
    expect((await gql(server, StartCall, { input: { calleeId: b.id, kind: 'AUDIO', offer } }, c.accessToken)).errors).toBeUndefined();
  });

  it('is answered once: of two answers at the same moment one wins, the other is a CONFLICT', async () => {
    const [a, b] = await Promise.all([signUp(server), signUp(server)]);
    const id = (await gql(server, StartCall, { input: { calleeId: b.id, kind: 'VIDEO', offer } }, a.accessToken)).data!.startCall.id;
    const results = await Promise.all([1, 2].map(() => gql(server, AnswerCall, { id, answer }, b.accessToken)));
    expect(results.filter((r) => r.data?.answerCall.status === 'IN_PROGRESS')).toHaveLength(1);
    expect(results.filter((r) => code(r) === 'CONFLICT')).toHaveLength(1);
    await gql(server, EndCall, { id }, a.accessToken);
  });

  it('is FORBIDDEN to strangers, and refuses bad input', async () => {
    const [a, b, stranger] = await Promise.all([signUp(server), signUp(server), signUp(server)]);
    const id = (await gql(server, StartCall, { input: { calleeId: b.id, kind: 'AUDIO', offer } }, a.accessToken)).data!.startCall.id;
    expect(code(await gql(server, AnswerCall, { id, answer }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, EndCall, { id }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, Signal, { id, signal: { x: 1 } }, stranger.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, AnswerCall, { id, answer }, a.accessToken))).toBe('FORBIDDEN');
    expect(code(await gql(server, AnswerCall, { id: '987654321', answer }, b.accessToken))).toBe('NOT_FOUND');
    const self = await gql(server, StartCall, { input: { calleeId: a.id, kind: 'AUDIO', offer } }, a.accessToken);
    expect(code(self)).toBe('BAD_USER_INPUT');
    const noOffer = await gql(server, StartCall, { input: { calleeId: stranger.id, kind: 'AUDIO', offer: 'not an object' } }, b.accessToken);
    expect(code(noOffer)).toBe('BAD_USER_INPUT');
    expect(noOffer.errors![0].extensions!.fields).toHaveProperty('offer');
    await gql(server, EndCall, { id }, a.accessToken);
  });
});
