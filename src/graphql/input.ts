import { GraphQLError, visit, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { AppError } from '../lib/errors.ts';

/** Nesting allowed in a variable's value: every input type here is a few levels deep. */
const MAX_NESTING = 32;

/**
 * What is wrong with a text, if anything: PostgreSQL's text and jsonb cannot hold a NUL
 * character, and a lone surrogate is not Unicode at all (Prisma cannot even send it).
 */
export function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL characters';
  if (!text.isWellFormed()) return 'must be valid Unicode (it holds a lone surrogate)';
  return null;
}

/** Only plain JSON reaches here, but uploads (graphql-upload's Upload) travel in variables too. */
const isPlainObject = (value: object) => {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/**
 * The field a problem is reported on, named as the rules in src/modules name them: within an
 * input object, from its own fields (`content`, `settings.theme`); otherwise the variable
 * (`ids.1`, or `search` itself).
 */
function fieldName(path: Array<string | number>): string {
  return (path.length > 1 && typeof path[1] === 'string' ? path.slice(1) : path).join('.');
}

/** The first unfit value in `value` as [field, problem], or null. */
function inspect(value: unknown, path: Array<string | number>): [string, string] | null {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? [fieldName(path), problem] : null;
  }
  if (value === null || typeof value !== 'object') return null;
  if (path.length > MAX_NESTING) return [fieldName(path.slice(0, 3)), `is nested more than ${MAX_NESTING} levels deep`];
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = inspect(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (!isPlainObject(value)) return null;
  for (const key in value) {
    const keyProblem = textProblem(key);
    if (keyProblem) return [fieldName(path), `has a key that ${keyProblem}`];
    const found = inspect((value as Record<string, unknown>)[key], [...path, key]);
    if (found) return found;
  }
  return null;
}

/** The first unfit string literal of a document, once per document (Yoga reuses parsed ones). */
const literalProblems = new WeakMap<DocumentNode, [string, string] | null>();

function literalProblem(document: DocumentNode): [string, string] | null {
  let found = literalProblems.get(document);
  if (found !== undefined) return found;
  found = null;
  let argument = 'input';
  visit(document, {
    Argument: { enter: (node) => void (argument = node.name.value) },
    ObjectField: { enter: (node) => void (argument = node.name.value) },
    StringValue(node) {
      const problem = textProblem(node.value);
      if (problem && !found) found = [argument, problem];
    },
  });
  literalProblems.set(document, found);
  return found;
}

/** "Variable "$input" got invalid value "x" at "input.recipientId"; …" → the field it names. */
function variableErrorField(message: string): string | null {
  const match = /^Variable "\$([^"]+)" (?:got invalid value .*? at "([^"]+)";|got invalid value|of required type|of non-null type)/s.exec(message);
  if (!match) return null;
  if (!match[2]) return match[1];
  // graphql writes the path as `input.attachmentIds[1]`.
  const path = match[2].replace(/\[(\d+)\]/g, '.$1').split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return fieldName(path);
}

/** A request-level error (not a field's) that does not yet say it is bad input and where. */
const needsLabel = (error: GraphQLError) =>
  !error.path && (error.extensions?.code == null || (error.extensions.code === 'BAD_USER_INPUT' && !error.extensions.fields && variableErrorField(error.message)));

/**
 * A variable the client sent that does not fit its type is bad input, said so: graphql-js
 * reports it without a code (or with our ID scalar's, but without the field), and clients look
 * for BAD_USER_INPUT and the field it names.
 */
function labelRequestErrors(result: ExecutionResult): ExecutionResult | null {
  if (!result.errors?.some(needsLabel)) return null;
  return {
    ...result,
    errors: result.errors.map((error) => {
      if (!needsLabel(error)) return error;
      const field = variableErrorField(error.message);
      return new GraphQLError(error.message, {
        nodes: error.nodes,
        extensions: {
          code: 'BAD_USER_INPUT',
          ...(field ? { fields: { [field]: error.message.replace(/^.*?; /s, '') } } : {}),
          // A request error, as Yoga answers the ones it finds itself.
          http: { status: 400 },
        },
      });
    }),
  };
}

/**
 * Checks every operation's input before it runs, on every surface: no string, in a variable
 * or written in the document, may hold a NUL character or a lone surrogate, and no variable
 * may nest deeper than 32 levels (a `settings` object a thousand deep). Refused with
 * BAD_USER_INPUT naming the field, so such input never reaches a rule or the database.
 */
export function inputChecks(): Plugin {
  const check = (args: ExecutionArgs, stop: (result: ExecutionResult) => void) => {
    const variables = args.variableValues ?? {};
    let found: [string, string] | null = null;
    for (const name in variables) {
      found = inspect(variables[name], [name]);
      if (found) break;
    }
    found ??= literalProblem(args.document);
    if (found) stop({ errors: [new AppError('BAD_USER_INPUT', `${found[0]}: ${found[1]}`, { fields: { [found[0]]: found[1] }, http: { status: 400 } })] });
  };
  /** A result (not a stream) whose request errors need their code and field. */
  const label = ({ result, setResult }: { result: ExecutionResult | AsyncIterable<unknown>; setResult(r: ExecutionResult): void }) => {
    if (Symbol.asyncIterator in result) return;
    const labelled = labelRequestErrors(result);
    if (labelled) setResult(labelled);
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      check(args, setResultAndStopExecution);
      return { onExecuteDone: label as never };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      check(args, setResultAndStopExecution);
      return { onSubscribeResult: label as never };
    },
  };
}
