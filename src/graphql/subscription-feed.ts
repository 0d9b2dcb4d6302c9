import type { ExecutionResult } from 'graphql';

/**
 * A transport's direct line to the client of one subscription (graphql-ws sets it on the
 * operation's context): sends one result, as the transport's own loop would have, and says
 * false instead when the client is not keeping up, so the result waits its turn.
 */
export type PushResult = (result: ExecutionResult) => boolean;

type Entry<R> = { value: R } | { error: unknown } | { end: true };
const DONE = { value: undefined, done: true } as const;

/**
 * A subscription's results: `source`'s events, read as they come and turned into results by
 * `map`. Ending the feed ends `source` at once, so a client going away releases its topics.
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
  const queue: Array<Entry<R>> = [];
  /** Set while the transport waits in `next()`; the queue is empty then. */
  let waiting: ((entry: Entry<R>) => void) | undefined;
  let ended = false;

  const settle = (entry: Entry<R>) => {
    const resolve = waiting;
    waiting = undefined;
    if (resolve) resolve(entry);
    else queue.push(entry);
  };
  const accept = (result: R) => {
    if (ended) return;
    if (push && waiting && !result.errors?.length && push(result)) return;
    settle({ value: result });
  };
  const unwrap = (entry: Entry<R>): IteratorResult<R> => {
    if ('value' in entry) return { value: entry.value, done: false };
    if ('error' in entry) throw entry.error;
    return DONE;
  };

  void (async () => {
    try {
      for (;;) {
        const next = await source.next();
        if (ended) return;
        if (next.done) break;
        const result = map(next.value);
        accept(result instanceof Promise ? await result : result);
      }
      if (!ended) {
        ended = true;
        settle({ end: true });
      }
    } catch (error) {
      if (ended) return;
      ended = true;
      settle({ error }); // the subscription ends with the error: release its topics
      await source.return?.();
    }
  })();

  return {
    next() {
      const entry = queue.shift();
      if (entry) return new Promise((resolve) => resolve(unwrap(entry)));
      if (ended) return Promise.resolve(DONE);
      return new Promise((resolve, reject) => {
        waiting = (entry) => {
          try {
            resolve(unwrap(entry));
          } catch (err) {
            reject(err);
          }
        };
      });
    },
    async return() {
      ended = true;
      queue.length = 0;
      const resolve = waiting;
      waiting = undefined;
      resolve?.({ end: true });
      await source.return?.();
      return DONE;
    },
    async throw(error?: unknown) {
      await this.return!();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
