import { createSourceEventStream, execute, print, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../schema/context.ts';
import { subscriptionFeed } from '../schema/subscription-feed.ts';

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
    /** Per event and selection: the verdict, or its promise while the first execution runs. */
    const byEvent = new WeakMap<object, Map<string, Verdict | Promise<Verdict>>>();

    const keyOf = (args: ExecutionArgs) => {
      let text = documentText.get(args.document);
      if (text === undefined) documentText.set(args.document, (text = print(args.document)));
      return `${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}\n${text}`;
    };

    /** The result for `event`, at once when it has been computed for another subscriber already. */
    const resultFor = (event: unknown, key: string, args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> => {
      const run = (contextValue: unknown) => execute({ ...args, rootValue: event, contextValue });
      if (typeof event !== 'object' || event === null) return run(args.contextValue);
      let results = byEvent.get(event);
      if (!results) byEvent.set(event, (results = new Map()));
      const earlier = results.get(key);
      if (earlier) {
        const reuse = ({ result, shareable }: Verdict) => {
          if (shareable) {
            stats.shared++;
            return result;
          }
          stats.executed++;
          return run(args.contextValue);
        };
        return earlier instanceof Promise ? earlier.then(reuse) : reuse(earlier);
      }
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
      stats.executed++;
      const first = run(watched);
      if (!(first instanceof Promise)) {
        results.set(key, { result: first, shareable: !read });
        return first;
      }
      const verdict = first.then((result) => {
        const known = { result, shareable: !read };
        results.set(key, known);
        return known;
      });
      // A failure reaches this subscriber through `first`, and any later one through `verdict`.
      verdict.catch(() => {});
      results.set(key, verdict);
      return first;
    };

    return {
      onSubscribe({ setSubscribeFn }) {
        setSubscribeFn(async (args: ExecutionArgs) => {
          const source = await createSourceEventStream(args);
          if (!(Symbol.asyncIterator in source)) return source;
          const key = keyOf(args);
          const { pushResult } = args.contextValue as Partial<Context>;
          return subscriptionFeed(source[Symbol.asyncIterator](), (event) => resultFor(event, key, args), pushResult);
        });
      },
    };
  }
}
