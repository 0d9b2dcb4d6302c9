import { GraphQLUpload, type FileUpload } from 'graphql-upload-minimal';
import { builder } from '../../graphql/builder.ts';
import type { FileSnapshot } from '../../lib/events.ts';
import { UserRef } from '../users/schema.ts';
import { deleteFile, signedFileUrl, uploadAvatar, uploadFile } from './service.ts';

// The GraphQL multipart request spec's scalar, under the name clients expect.
builder.addScalarType('Upload', GraphQLUpload as never);

export const FileRef = builder.objectRef<FileSnapshot>('File').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    size: t.exposeInt('size', { description: 'Bytes.' }),
    mimeType: t.exposeString('mimeType', { description: 'Decided from the content, not the name.' }),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (f) => new Date(f.createdAt) }),
    url: t.string({
      description: 'A signed link for viewing (inline); it works without headers and expires.',
      resolve: (f, _args, ctx) => signedFileUrl(ctx, f, false),
    }),
    downloadUrl: t.string({
      description: 'As url, but the browser saves the file under its name.',
      resolve: (f, _args, ctx) => signedFileUrl(ctx, f, true),
    }),
  }),
});

builder.mutationFields((t) => ({
  uploadFile: t.field({
    type: FileRef,
    description: 'Uploads a file (multipart request), optionally into a conversation, to attach to a message.',
    authScopes: { signedIn: true },
    args: { file: t.arg({ type: 'Upload', required: true }), conversationId: t.arg.id() },
    resolve: (_root, { file, conversationId }, ctx) => uploadFile(ctx, file as unknown as Promise<FileUpload>, conversationId),
  }),
  uploadAvatar: t.field({
    type: UserRef,
    authScopes: { signedIn: true },
    args: { file: t.arg({ type: 'Upload', required: true }) },
    resolve: (_root, { file }, ctx) => uploadAvatar(ctx, file as unknown as Promise<FileUpload>),
  }),
  deleteFile: t.id({
    description: 'Deletes one of your files; its links stop working.',
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => deleteFile(ctx, id),
  }),
}));
