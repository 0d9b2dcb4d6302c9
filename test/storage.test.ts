import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { LocalStorage, S3Storage, type Storage } from '../src/storage/storage.ts';
import { signUp } from './helpers/clients.ts';
import { directBetween } from './helpers/chat.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { PNG, upload } from './helpers/upload.ts';
import { graphql } from './generated/index.ts';

const UploadToBucket = graphql(`
  mutation UploadToBucket($file: Upload!, $conversationId: ID) {
    uploadFile(file: $file, conversationId: $conversationId) {
      id
      url
    }
  }
`);

// A real S3 protocol server (s3rver) on a free port, with a bucket on local disk.
let s3: S3rver;
let s3Endpoint: string;
let s3Dir: string;
let localDir: string;
const S3_ENV = () => ({ STORAGE: 's3', S3_BUCKET: 'uploads', S3_ENDPOINT: s3Endpoint, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' });

beforeAll(async () => {
  s3Dir = await mkdtemp(path.join(tmpdir(), 's3rver-'));
  localDir = await mkdtemp(path.join(tmpdir(), 'local-storage-'));
  s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3Dir, configureBuckets: [{ name: 'uploads', configs: [] }] });
  const { port } = (await s3.run()) as { port: number };
  s3Endpoint = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await s3?.close();
  await Promise.all([rm(s3Dir, { recursive: true, force: true }), rm(localDir, { recursive: true, force: true })]);
});

const backends: Array<[string, () => Storage]> = [
  ['local disk', () => new LocalStorage(localDir)],
  ['S3-compatible', () => S3Storage.fromConfig(loadConfig(S3_ENV()))],
];

describe.each(backends)('%s storage', (_name, make) => {
  it('stores, reads whole and by range, and removes', async () => {
    const storage = make();
    const key = `k${Date.now()}`;
    await storage.write(key, Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect(await text(storage.read(key))).toBe('hello world');
    expect(await text(storage.read(key, { start: 6, end: 10 }))).toBe('world');
    await storage.remove(key);
    await expect(text(storage.read(key))).rejects.toThrow();
  });

  it('keeps nothing when the incoming stream fails', async () => {
    const storage = make();
    const key = `failed${Date.now()}`;
    const failing = new Readable({ read() {} });
    failing.push(Buffer.alloc(1000, 1));
    setImmediate(() => failing.destroy(new Error('client went away')));
    await expect(storage.write(key, failing)).rejects.toThrow();
    await expect(text(storage.read(key))).rejects.toThrow();
  });
});

describe('a server storing uploads in S3', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(S3_ENV());
  });
  afterAll(() => server?.stop());

  it('serves an upload back through its signed link', async () => {
    const [a, b] = await Promise.all([signUp(server), signUp(server)]);
    const conversationId = await directBetween(server, a, b);
    const { body } = await upload(server, UploadToBucket, { conversationId }, { name: 'dot.png', bytes: PNG }, a.accessToken);
    expect(body.errors).toBeUndefined();
    const res = await fetch(body.data!.uploadFile.url);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
  });
});
