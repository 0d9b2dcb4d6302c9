import { createHmac, createSecretKey } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './generated/index.ts';
import { code, gql, signUp, type SignedUp } from './helpers/clients.ts';
import { DeleteMessage, directBetween, History, SendMessage } from './helpers/chat.ts';
import { startServer, TEST_JWT_SECRET, type TestServer } from './helpers/server.ts';
import { PNG, upload, wav } from './helpers/upload.ts';

const UploadFile = graphql(`
  mutation UploadFile($file: Upload!, $conversationId: ID) {
    uploadFile(file: $file, conversationId: $conversationId) {
      id
      name
      size
      mimeType
      width
      height
      url
      downloadUrl
    }
  }
`);
const UploadAvatar = graphql(`
  mutation UploadAvatar($file: Upload!) {
    uploadAvatar(file: $file) {
      id
      avatarUrl
    }
  }
`);
const DeleteFile = graphql(`
  mutation DeleteFile($id: ID!) {
    deleteFile(id: $id)
  }
`);
const Attachments = graphql(`
  query Attachments($conversationId: ID!) {
    messages(conversationId: $conversationId, last: 1) {
      edges {
        node {
          id
          kind
          attachments {
            id
            url
            mimeType
          }
        }
      }
    }
  }
`);

const LIMIT = 64 * 1024;
let server: TestServer;
let alice: SignedUp;
let bob: SignedUp;
let conversationId: string;

beforeAll(async () => {
  server = await startServer({ MAX_UPLOAD_BYTES: String(LIMIT) });
  [alice, bob] = await Promise.all([signUp(server), signUp(server)]);
  conversationId = await directBetween(server, alice, bob);
});
afterAll(() => server?.stop());

async function storedFiles(): Promise<string[]> {
  const root = path.join(server.dataDir, 'uploads');
  const dirs = await readdir(root).catch(() => [] as string[]);
  return (await Promise.all(dirs.map((d) => readdir(path.join(root, d))))).flat();
}

describe('uploadFile', () => {
  it('stores an image, records its size and type from the content, and serves the same bytes', async () => {
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'dot.png', bytes: PNG, type: 'image/png' }, alice.accessToken);
    expect(body.errors).toBeUndefined();
    const file = body.data!.uploadFile;
    expect(file).toMatchObject({ name: 'dot.png', size: PNG.length, mimeType: 'image/png', width: 1, height: 1 });
    const res = await fetch(file.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-length')).toBe(String(PNG.length));
    expect(res.headers.get('content-disposition')).toMatch(/^inline/);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
    expect((await fetch(file.downloadUrl)).headers.get('content-disposition')).toMatch(/^attachment; filename\*=UTF-8''dot\.png/);
  });

  it('decides the type from the content: a text file named .png is refused', async () => {
    const before = await storedFiles();
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'evil.png', bytes: Buffer.from('just some text'), type: 'image/png' }, alice.accessToken);
    expect(code(body)).toBe('BAD_USER_INPUT');
    expect(body.errors![0].extensions!.fields!.file).toMatch(/text\/plain/);
    expect(await storedFiles()).toEqual(before);
    const text = await upload(server, UploadFile, { conversationId }, { name: 'notes.txt', bytes: Buffer.from('hello\n') }, alice.accessToken);
    expect(text.body.data!.uploadFile.mimeType).toBe('text/plain');
  });

  it('refuses an upload over the limit with PAYLOAD_TOO_LARGE and stores nothing', async () => {
    const before = await storedFiles();
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'big.wav', bytes: wav(LIMIT + 1000) }, alice.accessToken);
    expect(code(body)).toBe('PAYLOAD_TOO_LARGE');
    expect(await storedFiles()).toEqual(before);
  });

  it('answers Range requests for audio and video', async () => {
    const audio = wav(4000);
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'clip.wav', bytes: audio }, alice.accessToken);
    const res = await fetch(body.data!.uploadFile.url, { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 100-199/${audio.length}`);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(audio.subarray(100, 200));
    const tail = await fetch(body.data!.uploadFile.url, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(audio.subarray(-10));
    expect((await fetch(body.data!.uploadFile.url, { headers: { range: `bytes=${audio.length}-` } })).status).toBe(416);
  });

  it('refuses altered and expired links', async () => {
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'dot.png', bytes: PNG }, alice.accessToken);
    const url = new URL(body.data!.uploadFile.url);
    const otherId = new URL(url);
    otherId.pathname = otherId.pathname.replace(/\/files\/\d+/, '/files/1');
    expect((await fetch(otherId)).status).toBe(403);
    const longer = new URL(url);
    longer.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 86_400));
    expect((await fetch(longer)).status).toBe(403);
    // A link that was valid once, signed with the server's key, whose time has passed.
    const expired = new URL(url);
    const past = String(Math.floor(Date.now() / 1000) - 60);
    const id = url.pathname.split('/')[2];
    const signature = createHmac('sha256', createSecretKey(Buffer.from(TEST_JWT_SECRET))).update(`link:${id}.${past}.inline`).digest('base64url');
    expired.searchParams.set('expires', past);
    expired.searchParams.set('signature', signature);
    const res = await fetch(expired);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'Link expired' });
  });

  it('requires a participant of the conversation and a signed-in user', async () => {
    const stranger = await signUp(server);
    expect(code((await upload(server, UploadFile, { conversationId }, { name: 'dot.png', bytes: PNG }, stranger.accessToken)).body)).toBe('FORBIDDEN');
    expect(code((await upload(server, UploadFile, {}, { name: 'dot.png', bytes: PNG })).body)).toBe('UNAUTHENTICATED');
  });
});

describe('attachments', () => {
  it('set the message kind, reach the participants, and stop being served when the message is deleted', async () => {
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'photo.png', bytes: PNG }, alice.accessToken);
    const fileId = body.data!.uploadFile.id;
    const sent = await gql(server, SendMessage, { input: { conversationId, attachmentIds: [fileId] } }, alice.accessToken);
    expect(sent.data!.sendMessage).toMatchObject({ kind: 'IMAGE', content: '', attachments: [{ id: fileId }] });

    const seen = await gql(server, Attachments, { conversationId }, bob.accessToken);
    const attachment = seen.data!.messages.edges[0].node.attachments[0];
    expect(attachment.mimeType).toBe('image/png');
    expect(Buffer.from(await (await fetch(attachment.url)).arrayBuffer())).toEqual(PNG);

    const again = await gql(server, SendMessage, { input: { conversationId, attachmentIds: [fileId] } }, alice.accessToken);
    expect(code(again)).toBe('BAD_USER_INPUT');
    await gql(server, DeleteMessage, { id: sent.data!.sendMessage.id }, alice.accessToken);
    expect((await fetch(attachment.url)).status).toBe(404);
  });

  it('cannot be someone else’s file, and only the uploader deletes a file', async () => {
    const { body } = await upload(server, UploadFile, { conversationId }, { name: 'mine.png', bytes: PNG }, alice.accessToken);
    const fileId = body.data!.uploadFile.id;
    const taken = await gql(server, SendMessage, { input: { conversationId, attachmentIds: [fileId], content: 'look' } }, bob.accessToken);
    expect(code(taken)).toBe('BAD_USER_INPUT');
    expect(taken.errors![0].extensions!.fields!.attachmentIds).toMatch(/not one of your uploads/);
    expect(code(await gql(server, DeleteFile, { id: fileId }, bob.accessToken))).toBe('FORBIDDEN');
    expect((await gql(server, DeleteFile, { id: fileId }, alice.accessToken)).data!.deleteFile).toBe(fileId);
    expect((await fetch(body.data!.uploadFile.url)).status).toBe(404);
    const history = await gql(server, History, { conversationId }, bob.accessToken);
    expect(history.errors).toBeUndefined();
  });
});

describe('uploadAvatar', () => {
  it('sets a public avatar address that serves the image, and refuses anything but an image', async () => {
    const { body } = await upload(server, UploadAvatar, {}, { name: 'me.png', bytes: PNG }, bob.accessToken);
    expect(body.errors).toBeUndefined();
    const res = await fetch(body.data!.uploadAvatar.avatarUrl!);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
    const text = await upload(server, UploadAvatar, {}, { name: 'me.txt', bytes: Buffer.from('not an image') }, bob.accessToken);
    expect(code(text.body)).toBe('BAD_USER_INPUT');
  });
});
