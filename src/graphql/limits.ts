import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { complexityFromQuery } from '@pothos/plugin-complexity';
import { getOperationAST, GraphQLError, Kind, parse, type DocumentNode, type ExecutionArgs, type OperationDefinitionNode, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.ts';
import type { Context } from '../schema/context.ts';
import { AppError } from '../lib/errors.ts';

/** Lexical tokens a document may hold: GraphiQL's introspection query has about 300. */
const MAX_TOKENS = 2000;
/** Directives (`@include`, `@skip`) per operation. */
const MAX_DIRECTIVES = 50;

/** A refused operation: the client's request asked too much, and hears which limit. */
function tooMuch(message: string, limit: string): GraphQLError {
  return new AppError('BAD_USER_INPUT', message.replace(/^Syntax Error: /, ''), { reason: 'QUERY_LIMIT', limit });
}

/** graphql-armor's rules report through the validation context instead of throwing out of it. */
const reportTo = (limit: string) => ({
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(tooMuch(error.message, limit))],
});

/**
 * Limits on what one operation may ask, on every surface (HTTP, graphql-ws, the dialects all
 * run through Yoga's envelope): tokens when parsing (graphql's own `maxTokens`), then depth,
 * aliases and directives (graphql-armor's validation rules, cached with the document), then
 * its cost (`QUERY_MAX_COST`) once its variables are known, and a time budget while it runs.
 */
export function queryLimits(config: Config): Plugin[] {
  return [
    {
      onParse({ setParseFn }) {
        setParseFn((source, options) => {
          try {
            return parse(source, { ...options, maxTokens: MAX_TOKENS });
          } catch (err) {
            const message = (err as Error).message;
            if (!/contains more that \d+ tokens/.test(message)) throw err;
            throw tooMuch(`The document holds more than ${MAX_TOKENS} tokens`, 'tokens');
          }
        });
      },
    },
    maxDepthPlugin({ n: config.QUERY_MAX_DEPTH, ignoreIntrospection: true, flattenFragments: true, ...reportTo('depth') }),
    maxAliasesPlugin({ n: config.QUERY_MAX_ALIASES, ...reportTo('aliases') }),
    maxDirectivesPlugin({ n: MAX_DIRECTIVES, ...reportTo('directives') }),
    costLimit(config.QUERY_MAX_COST),
    timeBudget(config.OPERATION_TIMEOUT * 1000),
  ];
}

interface Measured {
  /** The operation alone (with the document's fragments), as complexityFromQuery measures it. */
  document: DocumentNode;
  /** Its cost, once known, when no variable can change it. */
  cost?: number;
  /** Whether a variable may set a page size (`first: $n`), so the cost is measured per request. */
  variablesCount: boolean;
}

/** Per document and operation name: what measuring that operation needs, and its cost if fixed. */
const measured = new WeakMap<DocumentNode, Map<string | null, Measured>>();

function measurable(document: DocumentNode, operationName: string | null | undefined): Measured | null {
  let byName = measured.get(document);
  if (!byName) {
    byName = new Map();
    const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
    const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    for (const op of operations) {
      // Only an Int variable can be a page size: nothing else may be passed to first or last.
      const variablesCount = (op.variableDefinitions ?? []).some((v) => {
        const type = v.type.kind === Kind.NON_NULL_TYPE ? v.type.type : v.type;
        return type.kind === Kind.NAMED_TYPE && type.name.value === 'Int';
      });
      const entry: Measured = { document: { ...document, definitions: [op, ...fragments] }, variablesCount };
      byName.set(op.name?.value ?? null, entry);
      if (operations.length === 1) byName.set(null, entry);
    }
    measured.set(document, byName);
  }
  return byName.get(operationName ?? null) ?? null;
}

/**
 * Refuses an operation whose cost (src/graphql/cost.ts: every field, each list's selection
 * times the items it may return) is over `max`, before any resolver runs. Measured with the
 * operation's variables when one may set a page size (`first: $n`), otherwise once per
 * document; variables that do not fit are left for execution to report as usual.
 */
function costLimit(max: number): Plugin {
  const measure = (args: ExecutionArgs): GraphQLError | null => {
    const entry = measurable(args.document, args.operationName);
    if (!entry) return null;
    let cost = entry.cost;
    if (cost === undefined) {
      try {
        cost = complexityFromQuery(entry.document, { schema: args.schema, variables: (args.variableValues ?? {}) as Record<string, unknown>, ctx: {} }).complexity;
      } catch {
        return null;
      }
      if (!entry.variablesCount) entry.cost = cost;
    }
    if (cost <= max) return null;
    return tooMuch(`This operation costs ${cost}, more than the ${max} one request may: ask for smaller pages or fewer fields`, 'cost');
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = measure(args);
      if (refused) setResultAndStopExecution({ errors: [refused] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = measure(args);
      if (refused) setResultAndStopExecution({ errors: [refused] });
    },
  };
}

/**
 * Stops a query that runs longer than `ms`, and any query or mutation whose client has gone
 * (an HTTP request closed, a socket disconnected): Yoga's executor resolves no further field
 * once its signal aborts, and answers a query at once. A resolver already waiting on the
 * database finishes that statement. A mutation is not cut short by time, since its client
 * must learn whether its writes happened; a mutation whose client has gone runs no further
 * root field. Subscriptions are long by nature and end when their client leaves.
 */
function timeBudget(ms: number): Plugin {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue as Partial<Context>;
      const gone = ctx.clientGone;
      const isQuery = getOperationAST(args.document, args.operationName)?.operation === 'query';
      const controller = new AbortController();
      // The executor throws once stopped, and then does not call onExecuteDone: both ends clean up.
      const finish = () => {
        clearTimeout(timer);
        gone?.removeEventListener('abort', leave);
      };
      const stop = (counter: 'operationsTimedOut' | 'operationsAbandoned', reason: AppError) => {
        finish();
        if (controller.signal.aborted) return;
        if (ctx.counters) ctx.counters[counter]++;
        controller.abort(reason);
      };
      const timer = isQuery
        ? setTimeout(() => stop('operationsTimedOut', new AppError('UNAVAILABLE', `The query ran longer than ${ms / 1000} seconds and was stopped`, { reason: 'TIMEOUT' })), ms)
        : undefined;
      const leave = () => stop('operationsAbandoned', new AppError('UNAVAILABLE', 'The client went away', { reason: 'CLIENT_GONE' }));
      if (gone?.aborted) leave();
      else gone?.addEventListener('abort', leave, { once: true });
      (args as ExecutionArgs & { signal?: AbortSignal }).signal = controller.signal;
      return { onExecuteDone: finish };
    },
  };
}
