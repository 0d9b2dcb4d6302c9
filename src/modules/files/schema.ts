import { GraphQLUpload, type FileUpload } from 'graphql-upload-minimal';
import { builder } from '../../schema/builder.ts';
import type { FileSnapshot } from '../../lib/events.ts';
import { UserRef } from '../users/schema.ts';
import { getFile, linkFile, listFiles } from './links.ts';
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
    uploaderId: t.id({ nullable: true, resolve: (f) => f.uploaderId }),
    conversationId: t.id({ nullable: true, resolve: (f) => f.conversationId }),
    messageId: t.id({ nullable: true, resolve: (f) => f.messageId }),
    isExternal: t.boolean({ description: 'Recorded here, stored elsewhere (url is its own address).', resolve: (f) => f.externalUrl != null }),
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

const LinkFileInput = builder.inputType('LinkFileInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'File name; its extension decides the type.' }),
    url: t.string({ required: true, description: 'Where the file is served.' }),
    size: t.int({ required: true, description: 'Bytes; at most 5 MB.' }),
    messageId: t.id({ description: 'The message it belongs to; give this or conversationId.' }),
    conversationId: t.id({ description: 'The conversation it belongs to; give this or messageId.' }),
  }),
});

builder.queryFields((t) => ({
  file: t.withAuth({ signedIn: true }).field({
    type: FileRef,
    description: 'One of your uploads by id (any file, for admins); files of a conversation are listed by files(conversationId).',
    args: { id: t.arg.id({ required: true, description: 'The file.' }) },
    resolve: (_root, { id }, ctx) => getFile(ctx, id),
  }),
  files: t.withAuth({ signedIn: true }).field({
    type: [FileRef],
    description: "Files of a message or a conversation you can read; with neither, your own uploads.",
    args: {
      messageId: t.arg.id({ description: 'The files attached to this message.' }),
      conversationId: t.arg.id({ description: 'The files of this conversation.' }),
    },
    resolve: (_root, args, ctx) => listFiles(ctx, args),
  }),
}));

builder.mutationFields((t) => ({
  linkFile: t.withAuth({ signedIn: true }).field({
    type: FileRef,
    description: 'Records a file stored elsewhere, attached to a message or a conversation.',
    args: { input: t.arg({ type: LinkFileInput, required: true, description: 'Its name, address, size and where it belongs.' }) },
    resolve: (_root, { input }, ctx) => linkFile(ctx, input),
  }),
  uploadFile: t.withAuth({ signedIn: true }).field({
    type: FileRef,
    description: 'Uploads a file (multipart request), optionally into a conversation, to attach to a message.',
    args: {
      file: t.arg({ type: 'Upload', required: true, description: 'The file, as a part of the multipart request.' }),
      conversationId: t.arg.id({ description: 'The conversation it is for; you must be a member.' }),
    },
    resolve: (_root, { file, conversationId }, ctx) => uploadFile(ctx, file as unknown as Promise<FileUpload>, conversationId),
  }),
  uploadAvatar: t.withAuth({ signedIn: true }).field({
    type: UserRef,
    description: 'Uploads an image (multipart request) and makes it your avatar.',
    args: { file: t.arg({ type: 'Upload', required: true, description: 'The image, as a part of the multipart request.' }) },
    resolve: (_root, { file }, ctx) => uploadAvatar(ctx, file as unknown as Promise<FileUpload>),
  }),
  deleteFile: t.withAuth({ signedIn: true }).id({
    description: 'Deletes one of your files; its links stop working.',
    args: { id: t.arg.id({ required: true, description: 'The file.' }) },
    resolve: (_root, { id }, ctx) => deleteFile(ctx, id),
  }),
}));
