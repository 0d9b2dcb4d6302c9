import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Where uploaded bytes live. Local disk now; an S3-compatible backend fits the same shape. */
export interface Storage {
  /** Stores the stream under `key`; if the stream fails, nothing is left behind. */
  write(key: string, data: Readable): Promise<void>;
  /** The bytes of `key`, or of the inclusive range `start`..`end`. */
  read(key: string, range?: { start: number; end: number }): Readable;
  size(key: string): Promise<number>;
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
    await mkdir(path.dirname(target), { recursive: true });
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

  async size(key: string): Promise<number> {
    return (await stat(this.file(key))).size;
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }
}
