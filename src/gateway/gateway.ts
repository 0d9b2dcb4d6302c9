import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { getOperationAST, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Context } from '../schema/context.ts';
import { isCodedError, isTransientFailure, RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE } from '../lib/errors.ts';
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

  /**
   * An exception that is not an answer: a database or Redis failure that passes is UNAVAILABLE
   * (the client retries), anything else an internal error that says nothing more.
   */
  static unexpected(err: unknown): GatewayError {
    return isTransientFailure(err)
      ? new GatewayError('UNAVAILABLE', UNAVAILABLE_MESSAGE, {}, { reason: 'TRANSIENT', retryAfter: RETRY_AFTER_SECONDS })
      : new GatewayError('INTERNAL_SERVER_ERROR', 'Internal server error');
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

/**
 * A JSON object a client sent (a request body, a socket event's data), loosely typed until a
 * dialect reads its fields. What a document returns is typed by the document instead.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Data = Record<string, any>;

/** The variables of a document, optional when it has none (or none that are required). */
export type VariablesArg<V> = Record<string, never> extends V ? [variables?: V] : [variables: V];

/**
 * Runs GraphQL documents in-process for the dialects, through the same Yoga envelope as
 * /graphql (context, auth, validation, error masking), so a REST route or a socket event has
 * exactly the rules and events of the GraphQL operation it stands for.
 */
export class Gateway {
  /**
   * Documents already validated, with their operation names. The dialects' documents are
   * module constants (src/generated/compat), so each is validated once.
   */
  private readonly documents = new WeakMap<DocumentNode, { operationName: string | undefined }>();

  constructor(private readonly yoga: YogaServerInstance<TransportContext, Context>) {}

  /** Runs a query or mutation; resolves with its data or throws the first error as a GatewayError. */
  async run<R, V>(document: TypedDocumentNode<R, V>, variables: VariablesArg<V>[0], caller: Caller): Promise<R> {
    const { args } = await this.prepare(document, variables, caller);
    let result: ExecutionResult<R>;
    try {
      result = (await args.execute(args)) as ExecutionResult<R>;
    } catch (err) {
      if (isCodedError(err)) throw GatewayError.from(err);
      throw err;
    }
    if (result.errors?.length) throw GatewayError.from(result.errors[0]);
    // Without errors a query or mutation has its data (only a subscription's end has none).
    return result.data as R;
  }

  /**
   * Starts a subscription; resolves once it is listening (or throws why it could not start)
   * with an iterator of each event's data. `return()` on the iterator ends it.
   */
  async subscribe<R, V>(document: TypedDocumentNode<R, V>, variables: VariablesArg<V>[0], caller: Caller): Promise<AsyncIterableIterator<R>> {
    const { args } = await this.prepare(document, variables, caller);
    const result = (await args.subscribe(args)) as AsyncIterableIterator<ExecutionResult<R>> | ExecutionResult<R>;
    if (!(Symbol.asyncIterator in result)) {
      throw result.errors?.length ? GatewayError.from(result.errors[0]) : new GatewayError('INTERNAL_SERVER_ERROR', 'Subscription failed');
    }
    const events = result as AsyncIterableIterator<ExecutionResult<R>>;
    const data: AsyncIterableIterator<R> = {
      async next() {
        const step = await events.next();
        if (step.done) return { done: true, value: undefined };
        if (step.value.errors?.length) throw GatewayError.from(step.value.errors[0]);
        return { done: false, value: step.value.data as R };
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

  /**
   * Validated by the envelope like any request, once per document (codegen checked it against
   * schema.graphql already; this checks it against the schema the server runs, with its rules).
   */
  private async prepare(document: DocumentNode, variables: unknown, caller: Caller) {
    const enveloped = this.yoga.getEnveloped(caller as never);
    let known = this.documents.get(document);
    if (!known) {
      const errors = enveloped.validate(enveloped.schema, document);
      // A dialect's document is ours: one that does not validate is a bug, not bad input.
      if (errors.length > 0) throw new Error(`Invalid dialect document: ${errors.map((e: GraphQLError) => e.message).join('; ')}`);
      known = { operationName: getOperationAST(document)?.name?.value };
      this.documents.set(document, known);
    }
    const args = {
      schema: enveloped.schema,
      document,
      operationName: known.operationName,
      variableValues: (variables ?? {}) as Record<string, unknown>,
      contextValue: await enveloped.contextFactory(),
      execute: enveloped.execute,
      subscribe: enveloped.subscribe,
    };
    return { args };
  }
}
