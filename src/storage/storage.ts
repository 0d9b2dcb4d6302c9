import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config.ts';
import { pipeline } from 'node:stream/promises';

/** Where uploaded bytes live: local disk, or an S3-compatible bucket. */
export interface Storage {
  /** Stores the stream under `key`; if the stream fails, nothing is left behind. */
  write(key: string, data: Readable): Promise<void>;
  /** The bytes of `key`, or of the inclusive range `start`..`end`. */
  read(key: string, range?: { start: number; end: number }): Readable;
  remove(key: string): Promise<void>;
}

/** Files under a directory (DATA_DIR/uploads): one instance, or several sharing a volume. */
export class LocalStorage implements Storage {
  constructor(private readonly root: string) {}

  private file(key: string) {
    if (!/^[a-zA-Z0-9-]+$/.test(key)) throw new Error(`invalid storage key ${key}`);
    return path.join(this.root, key.slice(0, 2), key);
  }

  async write(key: string, data: Readable): Promise<void> {
    const target = this.file(key);
    // Until the pipeline listens, a failing source must still have a listener.
    let early: Error | undefined;
    const onEarlyError = (err: Error) => (early = err);
    data.once('error', onEarlyError);
    await mkdir(path.dirname(target), { recursive: true });
    data.off('error', onEarlyError);
    if (early) throw early;
    try {
      await pipeline(data, createWriteStream(target, { flags: 'wx' }));
    } catch (err) {
      await rm(target, { force: true });
      throw err;
    }
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.file(key), range);
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }
}

/**
 * An S3-compatible bucket (AWS S3, MinIO, R2…), so several instances share uploads. Writes
 * stream through a managed multipart upload; a failed stream aborts it, leaving nothing.
 */
export class S3Storage implements Storage {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  static fromConfig(config: Config): S3Storage {
    const client = new S3Client({
      region: config.S3_REGION,
      endpoint: config.S3_ENDPOINT,
      forcePathStyle: Boolean(config.S3_ENDPOINT),
      credentials:
        config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
          ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
          : undefined,
    });
    return new S3Storage(client, config.S3_BUCKET!);
  }

  async write(key: string, data: Readable): Promise<void> {
    // The SDK reads the body as it goes and stops listening when it fails; the pipe keeps a
    // listener on the source so its error cannot go unhandled.
    const body = new PassThrough();
    data.on('error', (err) => body.destroy(err));
    await new Upload({ client: this.client, params: { Bucket: this.bucket, Key: key, Body: data.pipe(body) } }).done();
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    const out = new PassThrough();
    this.client
      .send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }))
      .then((object) => (object.Body as Readable).pipe(out), (err) => out.destroy(err));
    return out;
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}

export function createStorage(config: Config): Storage {
  return config.STORAGE === 's3' ? S3Storage.fromConfig(config) : new LocalStorage(path.resolve(config.DATA_DIR, 'uploads'));
}
