import type { IncomingHttpHeaders } from 'node:http';

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
