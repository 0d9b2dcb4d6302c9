import { createSourceEventStream, execute, print, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

interface Verdict {
  result: ExecutionResult;
  /** False when a resolver read the subscriber's context: the result is that subscriber's own. */
  shareable: boolean;
}

/**
 * Runs subscriptions so that one event is turned into a result once for every subscriber that
 * asked for the same selection (same document, operation and variables), instead of once per
 * subscriber: with many subscribers per conversation, executing the selection was most of
 * the cost of a delivery.
 *
 * A result is only shared if computing it never looked at the context (the viewer, their
 * loaders, the request's origin): such a field may differ per subscriber (a message's
 * status, a user's email), so whoever selects one gets a result of their own. Which fields
 * those are is not listed anywhere to go stale: the first execution runs with a context that
 * notes every read, and anything that read it is not shared.
 */
export class SharedEventResults {
  /** Results computed, and results reused for another subscriber (shown on /metrics). */
  readonly stats = { executed: 0, shared: 0 };

  plugin(): Plugin {
    const { stats } = this;
    const documentText = new WeakMap<DocumentNode, string>();
    const byEvent = new WeakMap<object, Map<string, Promise<Verdict>>>();

    const keyOf = (args: ExecutionArgs) => {
      let text = documentText.get(args.document);
      if (text === undefined) documentText.set(args.document, (text = print(args.document)));
      return `${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}\n${text}`;
    };

    const resultFor = async (event: unknown, key: string, args: ExecutionArgs): Promise<ExecutionResult> => {
      const run = (contextValue: unknown) => execute({ ...args, rootValue: event, contextValue });
      if (typeof event !== 'object' || event === null) return run(args.contextValue);
      let results = byEvent.get(event);
      if (!results) byEvent.set(event, (results = new Map()));
      const earlier = results.get(key);
      if (earlier) {
        const { result, shareable } = await earlier;
        if (shareable) {
          stats.shared++;
          return result;
        }
        stats.executed++;
        return run(args.contextValue);
      }
      const verdict = (async (): Promise<Verdict> => {
        let read = false;
        const noted = <A extends unknown[], R>(reflect: (...a: A) => R) => (...a: A): R => {
          read = true;
          return reflect(...a);
        };
        const watched = new Proxy(args.contextValue as object, {
          get: noted(Reflect.get),
          has: noted(Reflect.has),
          ownKeys: noted(Reflect.ownKeys),
          getOwnPropertyDescriptor: noted(Reflect.getOwnPropertyDescriptor),
        });
        const result = await run(watched);
        return { result, shareable: !read };
      })();
      results.set(key, verdict);
      stats.executed++;
      return (await verdict).result;
    };

    return {
      onSubscribe({ setSubscribeFn }) {
        setSubscribeFn(async (args: ExecutionArgs) => {
          const source = await createSourceEventStream(args);
          if (!(Symbol.asyncIterator in source)) return source;
          const key = keyOf(args);
          return mapEvents(source[Symbol.asyncIterator](), (event) => resultFor(event, key, args));
        });
      },
    };
  }
}

/**
 * The results of `source`'s events. Ending the result ends `source` at once (an async
 * generator would wait for the next event first), so a client going away releases its topics.
 */
function mapEvents<T, R>(source: AsyncIterator<T>, map: (event: T) => Promise<R>): AsyncIterableIterator<R> {
  const done = { value: undefined, done: true } as const;
  return {
    async next() {
      const next = await source.next();
      if (next.done) return done;
      try {
        return { value: await map(next.value), done: false };
      } catch (err) {
        await source.return?.(); // the subscription ends with the error: release its topics
        throw err;
      }
    },
    async return() {
      await source.return?.();
      return done;
    },
    async throw(error?: unknown) {
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
