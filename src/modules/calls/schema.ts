import { resolveCursorConnection } from '@pothos/plugin-relay';
import { builder } from '../../schema/builder.ts';
import { badInput, forwardOnly } from '../../lib/errors.ts';
import { parseDatabaseId } from '../../lib/ids.ts';
import type { BusEvent, CallSnapshot } from '../../lib/events.ts';
import { asUser, UserRef } from '../users/schema.ts';
import { answerCall, callHistory, endCall, rejectCall, sendCallSignal, startCall } from './service.ts';

const CallKind = builder.enumType('CallKind', { values: ['AUDIO', 'VIDEO'] as const });
const CallStatus = builder.enumType('CallStatus', { values: ['RINGING', 'IN_PROGRESS', 'ENDED', 'REJECTED', 'MISSED'] as const });
const CallAction = builder.enumType('CallAction', {
  description: 'What happened: INCOMING carries the offer, ANSWERED the answer, SIGNAL an ICE candidate.',
  values: ['INCOMING', 'ANSWERED', 'REJECTED', 'ENDED', 'MISSED', 'SIGNAL'] as const,
});

const date = (value: string | null) => (value ? new Date(value) : null);

export const CallRef = builder.objectRef<CallSnapshot>('Call').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.field({ type: CallKind, resolve: (c) => c.kind }),
    status: t.field({ type: CallStatus, resolve: (c) => c.status }),
    caller: t.field({ type: UserRef, resolve: (c) => asUser(c.caller) }),
    callee: t.field({ type: UserRef, resolve: (c) => asUser(c.callee) }),
    startedAt: t.field({ type: 'DateTime', resolve: (c) => new Date(c.startedAt) }),
    answeredAt: t.field({ type: 'DateTime', nullable: true, resolve: (c) => date(c.answeredAt) }),
    endedAt: t.field({ type: 'DateTime', nullable: true, resolve: (c) => date(c.endedAt) }),
    duration: t.int({
      nullable: true,
      description: 'Seconds from answer to end; 0 for a call that ended unanswered; null while it lasts.',
      resolve: (c) => {
        if (!c.endedAt) return null;
        return c.answeredAt ? Math.round((Date.parse(c.endedAt) - Date.parse(c.answeredAt)) / 1000) : 0;
      },
    }),
  }),
});

export const CallEvent = builder.objectRef<Extract<BusEvent, { type: 'call' }>>('CallEvent').implement({
  fields: (t) => ({
    call: t.field({ type: CallRef, resolve: (e) => e.call }),
    action: t.field({ type: CallAction, resolve: (e) => e.action }),
    signal: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.signal ?? null }),
  }),
});

const StartCallInput = builder.inputType('StartCallInput', {
  fields: (t) => ({
    calleeId: t.id({ required: true, description: 'The user to call.' }),
    kind: t.field({ type: CallKind, required: true, description: 'AUDIO or VIDEO.' }),
    offer: t.field({ type: 'JSON', required: true, description: "The caller's WebRTC offer (an SDP description)." }),
  }),
});

/** A call's id, as its cursor; BAD_USER_INPUT for anything else. */
function callCursor(after: string): number {
  const id = parseDatabaseId(after);
  if (id === null) throw badInput({ after: 'is not a cursor from this list' });
  return id;
}

builder.queryFields((t) => ({
  calls: t.withAuth({ signedIn: true }).connection({
    type: CallRef,
    description: "The viewer's calls, newest first.",
    resolve: (_root, args, ctx) => {
      forwardOnly(args);
      return resolveCursorConnection<Promise<CallSnapshot[]>>(
        { args, toCursor: (c) => String(c.id), defaultSize: 20, maxSize: 100 },
        ({ after, limit }) => callHistory(ctx, after === undefined ? undefined : callCursor(after), limit),
      );
    },
  }),
}));

builder.mutationFields((t) => ({
  startCall: t.withAuth({ signedIn: true }).field({
    type: CallRef,
    description: 'Calls a user: the call is RINGING and the callee gets a CallEvent INCOMING with the offer (CONFLICT BUSY if either is in a call).',
    args: { input: t.arg({ type: StartCallInput, required: true, description: 'Whom to call, audio or video, and the WebRTC offer.' }) },
    resolve: (_root, { input }, ctx) => startCall(ctx, input),
  }),
  answerCall: t.withAuth({ signedIn: true }).field({
    type: CallRef,
    description: 'The callee accepts a RINGING call: it is IN_PROGRESS and the caller gets ANSWERED with the answer.',
    args: {
      id: t.arg.id({ required: true, description: 'The call.' }),
      answer: t.arg({ type: 'JSON', required: true, description: "The callee's WebRTC answer (an SDP description)." }),
    },
    resolve: (_root, { id, answer }, ctx) => answerCall(ctx, id, answer),
  }),
  rejectCall: t.withAuth({ signedIn: true }).field({
    type: CallRef,
    description: 'The callee declines a RINGING call: it is REJECTED.',
    args: { id: t.arg.id({ required: true, description: 'The call.' }) },
    resolve: (_root, { id }, ctx) => rejectCall(ctx, id),
  }),
  endCall: t.withAuth({ signedIn: true }).field({
    type: CallRef,
    description: 'Either party hangs up: the call is ENDED, with its duration.',
    args: { id: t.arg.id({ required: true, description: 'The call.' }) },
    resolve: (_root, { id }, ctx) => endCall(ctx, id),
  }),
  sendCallSignal: t.withAuth({ signedIn: true }).boolean({
    description: 'Relays an ICE candidate (or renegotiation) to the other party.',
    args: {
      id: t.arg.id({ required: true, description: 'The call.' }),
      signal: t.arg({ type: 'JSON', required: true, description: 'What to pass on, as the WebRTC API gave it (an RTCIceCandidate, say).' }),
    },
    resolve: (_root, { id, signal }, ctx) => sendCallSignal(ctx, id, signal),
  }),
}));
