import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';

/**
 * The JWT signing key: JWT_SECRET when set; otherwise one generated on first start and kept
 * in DATA_DIR, so tokens survive a restart. Writing with `wx` makes two instances starting
 * together on one DATA_DIR agree on a single key.
 */
export async function loadJwtSecret(config: Config): Promise<string> {
  return config.JWT_SECRET ?? keptInDataDir(config, 'jwt-secret', () => randomBytes(48).toString('base64url'));
}

export interface VapidKeys {
  /** The application server key browsers subscribe with: an uncompressed P-256 point, base64url. */
  publicKey: string;
  privateKey: string;
}

/** Web-push (VAPID) keys: VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY, or a pair made once and kept. */
export async function loadVapidKeys(config: Config): Promise<VapidKeys> {
  if (config.VAPID_PUBLIC_KEY && config.VAPID_PRIVATE_KEY) {
    return { publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY };
  }
  const text = await keptInDataDir(config, 'vapid-keys.json', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pub = publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(pub.x!, 'base64url'), Buffer.from(pub.y!, 'base64url')]);
    return JSON.stringify({ publicKey: point.toString('base64url'), privateKey: privateKey.export({ format: 'jwk' }).d });
  });
  return JSON.parse(text) as VapidKeys;
}

/** A value made on first start and kept in DATA_DIR; `wx` lets the first writer win a race. */
async function keptInDataDir(config: Config, name: string, make: () => string): Promise<string> {
  const file = path.resolve(config.DATA_DIR, name);
  await mkdir(config.DATA_DIR, { recursive: true });
  try {
    await writeFile(file, make(), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return (await readFile(file, 'utf8')).trim();
}
