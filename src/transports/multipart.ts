import type http from 'node:http';
import { processRequest } from 'graphql-upload-minimal';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Context, Services } from '../graphql/context.ts';
import { maskError, type TransportContext } from '../graphql/yoga.ts';
import { sendJson, transportContext } from './http.ts';

/**
 * POST /graphql with multipart/form-data: the GraphQL multipart request spec (Apollo's upload
 * link, urql's multipart fetch, curl -F). graphql-upload-minimal parses it as a stream with the
 * size limit applied while bytes arrive, so an upload is never held in memory whole; the
 * operation then runs through Yoga's envelope like any other request.
 */
export async function handleMultipart(
  services: Services,
  yoga: YogaServerInstance<TransportContext, Context>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const send = (status: number, body: unknown) => sendJson(res, status, body);
  let operation;
  try {
    operation = await processRequest(req, res, { maxFileSize: services.config.MAX_UPLOAD_BYTES, maxFiles: 10 });
  } catch (err) {
    const message = (err as Error).message;
    return send((err as { status?: number }).status ?? 400, { errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }] });
  }
  if (Array.isArray(operation)) {
    return send(400, { errors: [{ message: 'Send one operation per multipart request', extensions: { code: 'BAD_USER_INPUT' } }] });
  }
  const { schema, execute, contextFactory, parse, validate } = yoga.getEnveloped(transportContext(req));
  let document;
  try {
    document = parse(operation.query);
  } catch (err) {
    return send(400, { errors: [{ message: (err as Error).message }] });
  }
  const errors = validate(schema, document);
  if (errors.length > 0) return send(400, { errors });
  const result = (await execute({
    schema,
    document,
    operationName: operation.operationName,
    variableValues: operation.variables as Record<string, unknown>,
    contextValue: await contextFactory(),
  })) as { errors?: readonly Error[] };
  const mask = maskError(services.log);
  send(200, { ...result, ...(result.errors ? { errors: result.errors.map((e) => mask(e, 'Unexpected error.')) } : {}) });
}
