import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config.ts';

/**
 * The address a request came from, for limits counted per client. Behind a proxy we trust
 * (TRUST_PROXY=true) it is the last X-Forwarded-For entry, the one our proxy appended: the
 * entries before it are whatever the client claimed.
 */
export function clientAddress(
  headers: IncomingHttpHeaders,
  socketAddress: string | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.at(-1) : forwarded)?.split(',').at(-1)?.trim();
    if (last) return last;
  }
  return socketAddress ?? 'unknown';
}

/**
 * The part of an address that limits count: an IPv4 address whole (also when written as
 * `::ffff:a.b.c.d`), an IPv6 address by its /64 network, since one subscriber is handed a whole
 * /64 and could otherwise start afresh with every address in it.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * This server's origin as a client reached it, for absolute links: PUBLIC_URL when set, else
 * the host and scheme the request used (as the HTTP policy read them), else HOST:PORT.
 */
export function publicOrigin(config: Config, host: string | null | undefined, proto: string | null | undefined): string {
  return config.PUBLIC_URL?.replace(/\/$/, '') ?? `${proto === 'https' ? 'https' : 'http'}://${host ?? `${config.HOST}:${config.PORT}`}`;
}
