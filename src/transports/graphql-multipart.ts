import type http from 'node:http';
import { getOperationAST } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { authenticate, bearerToken } from '../modules/viewer/viewer.ts';
import { type Context } from '../schema/context.ts';
import { type Services } from '../services/services.ts';
import { maskError, type TransportContext } from '../graphql/yoga.ts';
import { clientGoneSignal, sendGraphQLError, sendJson, transportContext } from './http.ts';
import { MAX_JSON_BODY } from '../http/policy.ts';
import { formTmpDir, MultipartError, readForm, type Form } from './multipart.ts';

/** Files one request may carry. */
const MAX_FILES = 10;
/** The `operations` and `map` fields: an operation and its variables, never a file. */
const MAX_FIELD_BYTES = MAX_JSON_BODY;
const SPEC = 'https://github.com/jaydenseric/graphql-multipart-request-spec';

type Operation = { query?: unknown; operationName?: unknown; variables?: unknown };

/** The form's `map` field: each file field and where its Upload goes; null when unusable. */
function fileMap(fields: Record<string, string>): Record<string, string[]> | null {
  try {
    const map: unknown = JSON.parse(fields.map ?? 'null');
    if (!map || typeof map !== 'object' || Array.isArray(map)) return null;
    const entries = Object.entries(map);
    if (!entries.every(([, paths]) => Array.isArray(paths) && paths.every((p) => typeof p === 'string'))) return null;
    return Object.fromEntries(entries) as Record<string, string[]>;
  } catch {
    return null;
  }
}

/** Puts `value` at a `variables.a.0.b` path of the operation, into places the client made. */
function place(operation: Operation, dotted: string, value: unknown): boolean {
  const keys = dotted.split('.');
  if (keys[0] !== 'variables' || keys.length < 2 || keys.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) return false;
  let target: unknown = operation;
  for (const key of keys.slice(0, -1)) {
    if (!target || typeof target !== 'object' || !Object.hasOwn(target, key)) return false;
    target = (target as Record<string, unknown>)[key];
  }
  const last = keys.at(-1)!;
  if (!target || typeof target !== 'object' || !Object.hasOwn(target, last)) return false;
  (target as Record<string, unknown>)[last] = value;
  return true;
}

/** The operation of a read form with its files in place, or the reason it cannot run. */
function operationOf(form: Form, map: Record<string, string[]> | null): Operation | string {
  let operation: unknown;
  try {
    operation = JSON.parse(form.fields.operations ?? '');
  } catch {
    return `The operations field must be JSON (${SPEC})`;
  }
  if (Array.isArray(operation)) return 'Send one operation per multipart request';
  if (!operation || typeof operation !== 'object' || typeof (operation as Operation).query !== 'string') {
    return `The operations field must be an object with a query (${SPEC})`;
  }
  const { variables, operationName } = operation as Operation;
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return 'variables must be an object';
  if (operationName != null && typeof operationName !== 'string') return 'operationName must be a string';
  if (!map) return `The map field must be an object of file fields to variable paths (${SPEC})`;
  for (const [field, paths] of Object.entries(map)) {
    const file = form.files.find((f) => f.field === field);
    if (!file) return `File ${field} named in map is missing from the request`;
    for (const dotted of paths) {
      if (!place(operation as Operation, dotted, file.upload())) return `map: ${dotted} is not a variable of the operation`;
    }
  }
  return operation as Operation;
}

/**
 * POST /graphql with multipart/form-data: the GraphQL multipart request spec (Apollo's upload
 * link, urql's multipart fetch, curl -F). The caller is checked before a byte of the body is
 * read (every upload needs a signed-in user); files are streamed to temporary files with the
 * size limit applied while bytes arrive (src/transports/multipart.ts), and removed once the
 * answer is sent. The operation then runs through Yoga's envelope like any other request.
 */
export async function handleMultipart(
  services: Services,
  yoga: YogaServerInstance<TransportContext, Context>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const refuse = (status: number, code: string, message: string) => sendGraphQLError(req, res, status, code, message);
  const { viewer, authProblem } = await authenticate(services, bearerToken(req.headers.authorization));
  if (!viewer) return refuse(401, 'UNAUTHENTICATED', authProblem ?? 'Sign in to upload files');

  // Read once, when the first file part asks which files the map names (the spec sends the map
  // before the files; one sent after them names none).
  let map: ReturnType<typeof fileMap> | undefined;
  const mapOf = (fields: Record<string, string>) => (map ??= fileMap(fields));
  let form: Form;
  try {
    form = await readForm(req, {
      tmpDir: formTmpDir(services.config),
      maxFileBytes: services.config.MAX_UPLOAD_BYTES,
      maxFiles: MAX_FILES,
      maxFields: 2,
      maxFieldBytes: MAX_FIELD_BYTES,
      wantFile: (field, fields) => Object.hasOwn(mapOf(fields) ?? {}, field),
    });
  } catch (err) {
    if (!(err instanceof MultipartError)) throw err;
    return refuse(err.status, err.code, err.message);
  }
  try {
    const operation = operationOf(form, mapOf(form.fields));
    if (typeof operation === 'string') return refuse(400, 'BAD_USER_INPUT', operation);
    const enveloped = yoga.getEnveloped(transportContext(req, services.config, { signal: clientGoneSignal(res) }));
    let document;
    try {
      document = enveloped.parse(operation.query as string);
    } catch (err) {
      return sendJson(res, 400, { errors: [maskError(services.log)(err, 'Unexpected error.')] });
    }
    const errors = enveloped.validate(enveloped.schema, document);
    if (errors.length > 0) return sendJson(res, 400, { errors });
    const kind = getOperationAST(document, operation.operationName as string | undefined)?.operation;
    if (!kind) return refuse(400, 'BAD_USER_INPUT', 'Could not tell which operation to run: give operationName');
    if (kind === 'subscription') return refuse(400, 'BAD_USER_INPUT', 'Subscriptions run over graphql-ws, not multipart requests');
    let result: { errors?: readonly Error[] };
    try {
      result = (await enveloped.execute({
        schema: enveloped.schema,
        document,
        operationName: typeof operation.operationName === 'string' ? operation.operationName : undefined,
        variableValues: operation.variables as Record<string, unknown>,
        contextValue: await enveloped.contextFactory(),
      })) as { errors?: readonly Error[] };
    } catch (err) {
      // The executor throws when the time budget stops it or the client left.
      result = { errors: [err as Error] };
    }
    const mask = maskError(services.log);
    sendJson(res, 200, { ...result, ...(result.errors ? { errors: result.errors.map((e) => mask(e, 'Unexpected error.')) } : {}) });
  } finally {
    await form.discard();
  }
}
