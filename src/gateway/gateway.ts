import { parse, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Context } from '../schema/context.ts';
import { isCodedError } from '../lib/errors.ts';
import type { TransportContext } from '../graphql/yoga.ts';

/** Who a dialect call runs as, and where it came from (the same facts an HTTP request gives). */
export type Caller = TransportContext;

/**
 * A failed operation as a dialect sees it: the GraphQL error's code (CONTRACT codes, or
 * INTERNAL_SERVER_ERROR for a masked one), its message, and per-field messages when the input
 * was refused.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** Bad input in one field, worded as every dialect shows it: "field: problem". */
  static badField(field: string, problem: string): GatewayError {
    return new GatewayError('BAD_USER_INPUT', `${field}: ${problem}`, { [field]: problem });
  }

  static from(error: GraphQLError): GatewayError {
    const extensions = (error.extensions ?? {}) as Record<string, unknown>;
    // Errors without a code are the request's own (a variable of the wrong type, say): the
    // dialect passed on what the client sent, so the client's input was bad.
    return new GatewayError(
      String(extensions.code ?? 'BAD_USER_INPUT'),
      error.message,
      (extensions.fields as Record<string, string>) ?? {},
      extensions,
    );
  }
}

/** Data of a query or mutation, loosely typed: each dialect shapes it into its seed's JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Data = Record<string, any>;

/**
 * Runs GraphQL documents in-process for the dialects, through the same Yoga envelope as
 * /graphql (context, auth, validation, error masking), so a REST route or a socket event has
 * exactly the rules and events of the GraphQL operation it stands for.
 */
export class Gateway {
  private readonly documents = new Map<string, DocumentNode>();

  constructor(private readonly yoga: YogaServerInstance<TransportContext, Context>) {}

  /** Runs a query or mutation; resolves with its data or throws the first error as a GatewayError. */
  async run(document: string, variables: Record<string, unknown>, caller: Caller): Promise<Data> {
    const { args } = await this.prepare(document, variables, caller);
    let result: ExecutionResult<Data>;
    try {
      result = (await args.execute(args)) as ExecutionResult<Data>;
    } catch (err) {
      if (isCodedError(err)) throw GatewayError.from(err);
      throw err;
    }
    if (result.errors?.length) throw GatewayError.from(result.errors[0]);
    return result.data ?? {};
  }

  /**
   * Starts a subscription; resolves once it is listening (or throws why it could not start)
   * with an iterator of each event's data. `return()` on the iterator ends it.
   */
  async subscribe(document: string, variables: Record<string, unknown>, caller: Caller): Promise<AsyncIterableIterator<Data>> {
    const { args } = await this.prepare(document, variables, caller);
    const result = (await args.subscribe(args)) as AsyncIterableIterator<ExecutionResult<Data>> | ExecutionResult<Data>;
    if (!(Symbol.asyncIterator in result)) {
      throw result.errors?.length ? GatewayError.from(result.errors[0]) : new GatewayError('INTERNAL_SERVER_ERROR', 'Subscription failed');
    }
    const events = result as AsyncIterableIterator<ExecutionResult<Data>>;
    const data: AsyncIterableIterator<Data> = {
      async next() {
        const step = await events.next();
        if (step.done) return { done: true, value: undefined };
        if (step.value.errors?.length) throw GatewayError.from(step.value.errors[0]);
        return { done: false, value: step.value.data ?? {} };
      },
      async return() {
        await events.return?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return data;
      },
    };
    return data;
  }

  /** Parsed once per document text; validated by the envelope like any request. */
  private async prepare(text: string, variables: Record<string, unknown>, caller: Caller) {
    const enveloped = this.yoga.getEnveloped(caller as never);
    let document = this.documents.get(text);
    if (!document) {
      document = parse(text);
      const errors = enveloped.validate(enveloped.schema, document);
      // A dialect's document is ours: one that does not validate is a bug, not bad input.
      if (errors.length > 0) throw new Error(`Invalid dialect document: ${errors.map((e: GraphQLError) => e.message).join('; ')}`);
      this.documents.set(text, document);
    }
    const args = {
      schema: enveloped.schema,
      document,
      variableValues: variables,
      contextValue: await enveloped.contextFactory(),
      execute: enveloped.execute,
      subscribe: enveloped.subscribe,
    };
    return { args };
  }
}
