import { createECDH, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, X509Certificate, type ECDH } from 'node:crypto';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

// web-push's own dependency: the reference implementation of RFC 8188 (aes128gcm) in Node.
const ece = createRequire(import.meta.url)('http_ece') as {
  decrypt(body: Buffer, params: { version: string; privateKey: ECDH; authSecret: string }): Buffer;
};

/**
 * A Web Push service as browsers' vendors run them, on this machine: it takes the POSTs a
 * push sender makes to a subscription's endpoint and answers as it is told (201 Created unless a
 * test scripted otherwise). HTTPS, with a certificate made here for 127.0.0.1, whose PEM
 * (`caPem`) the sender must trust.
 */
export interface PushRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** What the service answered. */
  status: number;
}

export interface BrowserSubscription {
  /** What PushSubscription.toJSON() gives a page: the endpoint and the keys, for savePushSubscription. */
  input: { endpoint: string; p256dh: string; auth: string };
  path: string;
  /** The browser's own half, which only it holds: what decrypts the pushes. */
  ecdh: ECDH;
  authSecret: Buffer;
}

export class PushService {
  readonly caPem: string;
  private readonly server: https.Server;
  private readonly scripted = new Map<string, number[]>();
  private readonly queues = new Map<string, PushRequest[]>();
  private readonly waiters = new Map<string, Array<(request: PushRequest) => void>>();
  private origin = '';

  constructor() {
    const { key, cert } = selfSignedCertificate();
    this.caPem = cert;
    this.server = https.createServer({ key, cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const status = this.scripted.get(path)?.shift() ?? 201;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 201 ? '' : `answer ${status}`);
        const request = { path, headers: req.headers, body: Buffer.concat(chunks), status };
        const waiter = this.waiters.get(path)?.shift();
        if (waiter) waiter(request);
        else this.queues.set(path, [...(this.queues.get(path) ?? []), request]);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The endpoint's origin: the `aud` a VAPID token for it must name. */
  get audience(): string {
    return this.origin;
  }

  /** A browser's new subscription at this service: a fresh P-256 key pair and 16-byte auth secret. */
  subscribe(name: string): BrowserSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const authSecret = randomBytes(16);
    const path = `/push/${name}`;
    return {
      input: { endpoint: `${this.origin}${path}`, p256dh: ecdh.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url') },
      path,
      ecdh,
      authSecret,
    };
  }

  /** The next requests to `sub`'s endpoint are answered with these statuses, in order (then 201). */
  answer(sub: BrowserSubscription, ...statuses: number[]): void {
    this.scripted.set(sub.path, [...(this.scripted.get(sub.path) ?? []), ...statuses]);
  }

  /** The next request to `sub`'s endpoint not yet taken, as it arrives (or already arrived). */
  next(sub: BrowserSubscription, ms = 10_000): Promise<PushRequest> {
    const queued = this.queues.get(sub.path)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiters.get(sub.path) ?? [];
        list.splice(list.indexOf(take), 1);
        reject(new Error(`no push reached ${sub.path} within ${ms} ms`));
      }, ms);
      const take = (request: PushRequest) => {
        clearTimeout(timer);
        resolve(request);
      };
      this.waiters.set(sub.path, [...(this.waiters.get(sub.path) ?? []), take]);
    });
  }

  /** Requests that arrived and no test took yet. */
  pending(sub: BrowserSubscription): PushRequest[] {
    return [...(this.queues.get(sub.path) ?? [])];
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The payload a browser's push event would see: decrypted with the subscription's private key and auth secret (RFC 8291). */
export function decryptPush(request: PushRequest, sub: BrowserSubscription): Record<string, unknown> {
  const plain = ece.decrypt(request.body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: sub.authSecret.toString('base64url') });
  return JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
}

export interface VapidToken {
  /** The `k` of the header: the sender's application server key. */
  key: string;
  claims: { aud?: string; exp?: number; sub?: string };
  /** Whether the token's ES256 signature verifies with `key`. */
  signatureValid: boolean;
}

/** Reads `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292) and checks the JWT's signature with k; null if the header is not that. */
export function readVapid(request: PushRequest): VapidToken | null {
  const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+),\s*k=([\w-]+)$/.exec(request.headers.authorization ?? '');
  if (!match) return null;
  const [, token, key] = match;
  const [header, claims, signature] = token.split('.');
  const point = Buffer.from(key, 'base64url');
  const publicKey = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
  const alg = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: string }).alg;
  const signatureValid =
    alg === 'ES256' &&
    point.length === 65 &&
    verify('sha256', Buffer.from(`${header}.${claims}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  return { key, claims: JSON.parse(Buffer.from(claims, 'base64url').toString()) as VapidToken['claims'], signatureValid };
}

/**
 * A throwaway self-signed certificate for 127.0.0.1 (and localhost), P-256, valid for a day:
 * a minimal X.509 v3 written in DER by hand, since node:crypto signs but does not issue.
 */
function selfSignedCertificate(): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from('push service (test)')))));
  const now = Date.now();
  const serial = randomBytes(8);
  serial[0] &= 0x7f;
  const extensions = seq(
    // basicConstraints: critical, CA (it is its own issuer).
    seq(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, seq(der(0x01, Buffer.from([0xff]))))),
    // subjectAltName: IP 127.0.0.1, DNS localhost.
    seq(oid('2.5.29.17'), der(0x04, seq(der(0x87, Buffer.from([127, 0, 0, 1])), der(0x82, Buffer.from('localhost'))))),
  );
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 24 * 3600_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey);
  const certificate = seq(tbs, ecdsaWithSha256, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const cert = `-----BEGIN CERTIFICATE-----\n${certificate.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  if (!new X509Certificate(cert).checkIP('127.0.0.1')) throw new Error('the test certificate does not name 127.0.0.1');
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert };
}

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

function seq(...parts: Buffer[]): Buffer {
  return der(0x30, ...parts);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const n of rest) {
    const digits = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) digits.unshift((v & 0x7f) | 0x80);
    bytes.push(...digits);
  }
  return der(0x06, Buffer.from(bytes));
}

function utcTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-12-03T16:18:40.000Z → 261203161840Z
  return der(0x17, Buffer.from(`${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`));
}
