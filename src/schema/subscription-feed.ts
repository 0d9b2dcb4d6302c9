import type { ExecutionResult } from 'graphql';
import { EventStream } from '../lib/events.ts';

/**
 * A transport's direct line to the client of one subscription (graphql-ws sets it on the
 * operation's context): sends one result, as the transport's own loop would have, and says
 * false instead when the client is not keeping up, so the result waits its turn.
 */
export type PushResult = (result: ExecutionResult) => boolean;

/**
 * A subscription's results: `source`'s events, read as they come and turned into results by
 * `map`, queued for the transport in an EventStream. Ending the feed ends `source` at once,
 * so a client going away releases its topics.
 *
 * Given `push`, a result goes straight to it whenever the transport is waiting for the next
 * one and the result has no errors: the chain of iterators between an event and the socket
 * (envelop's error masking, graphql-ws's loop and its frame) then runs once per subscription
 * rather than once per event, and that chain cost more per delivery than writing the frame.
 * A result with errors, any that comes while an earlier one is still on its way through the
 * chain, and any that `push` declines, takes the chain: errors are masked as always, the order
 * is kept, and a client that reads slowly is sent to at its own pace, as before (the chain
 * waits for each write), with results queued here rather than frames in its socket.
 */
export function subscriptionFeed<T, R extends ExecutionResult>(
  source: AsyncIterator<T>,
  map: (event: T) => R | Promise<R>,
  push?: (result: R) => boolean,
): AsyncIterableIterator<R> {
  const results = new EventStream<R>();
  results.onEnd(() => void source.return?.());
  void (async () => {
    try {
      for (;;) {
        const next = await source.next();
        if (next.done || results.isClosed) break;
        const mapped = map(next.value);
        const result = mapped instanceof Promise ? await mapped : mapped;
        if (push && results.isReaderWaiting && !result.errors?.length && push(result)) continue;
        results.emit(result);
      }
      results.finish();
    } catch (error) {
      results.finish(error); // the subscription ends with the error, and releases its topics
    }
  })();
  return results;
}
