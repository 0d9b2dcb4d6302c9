import { z } from 'zod';
import type { Call, User } from '../../generated/prisma/client.ts';
import type { SignedInContext } from '../../schema/context.ts';
import type { Services } from '../../services/services.ts';
import { AppError, badInput, forbidden, isCodedError, notFound } from '../../lib/errors.ts';
import { topics, type CallAction, type CallSnapshot } from '../../lib/events.ts';
import { parseInput } from '../../lib/validation.ts';
import { iso, userSnapshot } from '../users/snapshot.ts';
import { recordEvent, type NewOutboxEvent } from '../outbox/outbox.ts';

/**
 * WebRTC call signalling. Media flows between the browsers; the server keeps the call's state
 * (RINGING → IN_PROGRESS → ENDED, or REJECTED / MISSED) and relays offers, answers and ICE
 * candidates to the other party's `userEvents`.
 */

type CallRow = Call & { caller: User; callee: User };
const withParties = { caller: true, callee: true } as const;

export function callSnapshot(call: CallRow): CallSnapshot {
  return {
    id: call.id,
    kind: call.kind,
    status: call.status,
    caller: userSnapshot(call.caller),
    callee: userSnapshot(call.callee),
    startedAt: call.startedAt.toISOString(),
    answeredAt: iso(call.answeredAt),
    endedAt: iso(call.endedAt),
  };
}

/** Tells both parties (all their devices) what happened to the call. */
async function announce(services: Services, call: CallRow, action: CallAction, signal: unknown = null) {
  const event = { type: 'call' as const, action, call: callSnapshot(call), signal };
  await services.bus.publish([call.callerId, call.calleeId].map(topics.user), event);
}

const signalRule = z.record(z.string(), z.unknown(), 'must be an object (an SDP description or ICE candidate)').refine(
  (v) => JSON.stringify(v).length <= 64 * 1024,
  'must be at most 64 KB of JSON',
);

const startRules = z.object({
  calleeId: z.union([z.string(), z.number()]),
  kind: z.enum(['AUDIO', 'VIDEO']),
  offer: signalRule,
});

const busy = (who: string) => new AppError('CONFLICT', `${who} in another call`, { reason: 'BUSY' });
const wrongState = (status: string, wanted: string) =>
  new AppError('CONFLICT', `The call is ${status}, not ${wanted}`, { reason: 'WRONG_STATE', status });

export async function startCall(ctx: SignedInContext, input: unknown): Promise<CallSnapshot> {
  const me = ctx.viewer.id;
  const data = parseInput(startRules, input);
  const calleeId = Number(data.calleeId);
  if (calleeId === me) throw badInput({ calleeId: 'you cannot call yourself' });
  const callee = Number.isSafeInteger(calleeId) ? await ctx.db.user.findUnique({ where: { id: calleeId } }) : null;
  if (!callee || callee.status !== 'ACTIVE') throw notFound('User');

  const created = await ctx.db.$transaction(async (tx) => {
    // Lock both users' rows (in id order, so two calls between the same pair cannot deadlock)
    // so that two calls cannot both find the line free.
    await tx.$queryRaw`SELECT id FROM "User" WHERE id IN (${me}, ${calleeId}) ORDER BY id FOR UPDATE`;
    const active = await tx.call.findFirst({
      where: { status: { in: ['RINGING', 'IN_PROGRESS'] }, OR: [{ callerId: { in: [me, calleeId] } }, { calleeId: { in: [me, calleeId] } }] },
    });
    if (active) throw busy(active.callerId === me || active.calleeId === me ? 'You are' : 'This user is');
    const call = await tx.call.create({ data: { kind: data.kind, callerId: me, calleeId, offer: data.offer as object } });
    await recordEvent(tx, callEvent(call));
    return call;
  });
  ctx.outbox.kick();
  // The parties are read after the commit: Prisma reads an include's relations at once, which
  // inside a transaction (one connection) sends two statements on it together, which pg@9
  // will refuse (pg warns of it now).
  const call = await ctx.db.call.findUniqueOrThrow({ where: { id: created.id }, include: withParties });
  ctx.calls.ring(call.id);
  await announce(ctx, call, 'INCOMING', data.offer);
  return callSnapshot(call);
}

/** The call, if the viewer is one of its parties. */
async function ownCall(ctx: SignedInContext, id: string | number): Promise<CallRow> {
  const me = ctx.viewer.id;
  const callId = Number(id);
  const call = Number.isSafeInteger(callId) ? await ctx.db.call.findUnique({ where: { id: callId }, include: withParties }) : null;
  if (!call) throw notFound('Call');
  if (call.callerId !== me && call.calleeId !== me) throw forbidden('This is not your call');
  return call;
}

/**
 * Moves the call from one of `from` to `to` in one conditional update, so of two racing
 * requests (a double answer, an answer against the timeout) exactly one wins.
 */
async function transition(ctx: Services, call: Call, from: Call['status'][], data: Partial<Call>): Promise<CallRow> {
  const moved = await ctx.db.$transaction(async (tx) => {
    const { count } = await tx.call.updateMany({ where: { id: call.id, status: { in: from } }, data: data as never });
    // The event is stored with the change it describes, and only by the request that made it.
    if (count === 1) await recordEvent(tx, callEvent({ ...call, ...data }));
    return count;
  });
  if (moved === 1) ctx.outbox.kick();
  const current = await ctx.db.call.findUniqueOrThrow({ where: { id: call.id }, include: withParties });
  if (moved === 0) throw wrongState(current.status, from.join(' or '));
  return current;
}

/** The outbox event of a call's state: `call.started`, `call.answered`, or `call.ended` (ended, rejected or missed). */
function callEvent(call: Call): NewOutboxEvent {
  const type = call.status === 'RINGING' ? 'call.started' : call.status === 'IN_PROGRESS' ? 'call.answered' : 'call.ended';
  return {
    type,
    topic: `call:${call.id}`,
    payload: {
      id: call.id,
      kind: call.kind,
      status: call.status,
      callerId: call.callerId,
      calleeId: call.calleeId,
      startedAt: call.startedAt.toISOString(),
      answeredAt: iso(call.answeredAt),
      endedAt: iso(call.endedAt),
    },
  };
}

export async function answerCall(ctx: SignedInContext, id: string, answer: unknown): Promise<CallSnapshot> {
  const call = await ownCall(ctx, id);
  if (call.calleeId !== ctx.viewer.id) throw forbidden('Only the person called can answer');
  const sdp = parseInput(z.object({ answer: signalRule }), { answer }).answer;
  const updated = await transition(ctx, call, ['RINGING'], { status: 'IN_PROGRESS', answeredAt: new Date(), answer: sdp as never });
  ctx.calls.stopRinging(call.id);
  await announce(ctx, updated, 'ANSWERED', sdp);
  return callSnapshot(updated);
}

export async function rejectCall(ctx: SignedInContext, id: string): Promise<CallSnapshot> {
  const call = await ownCall(ctx, id);
  if (call.calleeId !== ctx.viewer.id) throw forbidden('Only the person called can reject; the caller ends the call');
  const updated = await transition(ctx, call, ['RINGING'], { status: 'REJECTED', endedAt: new Date() });
  ctx.calls.stopRinging(call.id);
  await announce(ctx, updated, 'REJECTED');
  return callSnapshot(updated);
}

export async function endCall(ctx: SignedInContext, id: string): Promise<CallSnapshot> {
  const call = await ownCall(ctx, id);
  const updated = await transition(ctx, call, ['RINGING', 'IN_PROGRESS'], { status: 'ENDED', endedAt: new Date() });
  ctx.calls.stopRinging(call.id);
  await announce(ctx, updated, 'ENDED');
  return callSnapshot(updated);
}

export async function sendCallSignal(ctx: SignedInContext, id: string, signal: unknown): Promise<boolean> {
  const call = await ownCall(ctx, id);
  const payload = parseInput(z.object({ signal: signalRule }), { signal }).signal;
  if (call.status !== 'RINGING' && call.status !== 'IN_PROGRESS') throw wrongState(call.status, 'RINGING or IN_PROGRESS');
  const other = call.callerId === ctx.viewer.id ? call.calleeId : call.callerId;
  await ctx.bus.publish(topics.user(other), { type: 'call', action: 'SIGNAL', call: callSnapshot(call), signal: payload });
  return true;
}

/** Calls still ringing after `timeoutSeconds` become MISSED (also those of an instance that died). */
export async function expireRingingCalls(services: Services, timeoutSeconds: number): Promise<void> {
  const stale = await services.db.call.findMany({
    where: { status: 'RINGING', startedAt: { lte: new Date(Date.now() - timeoutSeconds * 1000) } },
    include: withParties,
  });
  for (const call of stale) {
    // Answered or ended meanwhile (here or on another instance): left as it is.
    const missed = await transition(services, call, ['RINGING'], { status: 'MISSED', endedAt: new Date() }).catch((err) => {
      if (isCodedError(err)) return null;
      throw err;
    });
    if (missed) await announce(services, missed, 'MISSED');
  }
}

/** A page of the viewer's calls, newest first. */
export async function callHistory(ctx: SignedInContext, before: number | undefined, limit: number): Promise<CallSnapshot[]> {
  const me = ctx.viewer.id;
  const calls = await ctx.db.call.findMany({
    where: { OR: [{ callerId: me }, { calleeId: me }], ...(before ? { id: { lt: before } } : {}) },
    orderBy: { id: 'desc' },
    take: limit,
    include: withParties,
  });
  return calls.map(callSnapshot);
}
