import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** What WEBHOOK_ALLOW_PRIVATE opens: loopback, and private networks of IPv4 and IPv6. */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'uniqueLocal']);

/**
 * Requests this server makes to addresses its users give (webhooks): never to a private,
 * loopback, link-local or otherwise non-public address, unless the operator's allow-list
 * names it, so that a webhook cannot be pointed at the server's own network (server-side
 * request forgery). The address is checked as it is resolved for the connection itself, so a
 * name that resolves to a public address when registered and a private one later is refused.
 */
export class OutboundPolicy {
  private readonly allowed: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;

  /**
   * `allowPrivate`: loopback and private networks may be reached (on-premises receivers,
   * tests); link-local and other reserved ranges (cloud metadata services) still may not.
   * `allowedNetworks`: CIDRs (`10.1.0.0/16`, `169.254.10.0/24`) reachable although not public.
   */
  constructor(
    private readonly allowPrivate: boolean,
    allowedNetworks: string[],
  ) {
    this.allowed = allowedNetworks.map((cidr) => ipaddr.parseCIDR(cidr));
  }

  /** Why `address` may not be reached, or null if it may. */
  refusal(address: string): string | null {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address); // an IPv4-mapped IPv6 address is judged as the IPv4 one
    } catch {
      return 'is not an IP address';
    }
    if (this.allowed.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return null;
    const range = ip.range();
    if (range === 'unicast' || (this.allowPrivate && PRIVATE_RANGES.has(range))) return null;
    return `points at a ${range} address (${address}), which is not reachable from here`;
  }

  /** Why `url` may not be a target (not http(s), credentials, a refused address), or null. Resolves its name. */
  async checkUrl(url: string): Promise<string | null> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'must be an absolute http(s) URL';
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an http or https URL';
    if (parsed.username || parsed.password) return 'must not contain credentials';
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host)) return this.refusal(host);
    let addresses: Array<{ address: string }>;
    try {
      addresses = await dns.lookup(host, { all: true });
    } catch {
      return `names a host that does not resolve (${host})`;
    }
    for (const { address } of addresses) {
      const refused = this.refusal(address);
      if (refused) return refused;
    }
    return null;
  }

  /** A `lookup` for http.request (or an Agent) that refuses addresses this policy does not allow. */
  lookup(): LookupFunction {
    return (hostname, options, callback) => {
      dns.lookup(hostname, { ...options, all: true }).then(
        (addresses) => {
          const refused = addresses.map((a) => this.refusal(a.address)).find(Boolean);
          if (refused) return callback(Object.assign(new Error(`Refused: ${hostname} ${refused}`), { code: 'EREFUSED_TARGET' }), '', 0);
          if (options.all) return (callback as unknown as (err: null, all: typeof addresses) => void)(null, addresses);
          callback(null, addresses[0].address, addresses[0].family);
        },
        (err: NodeJS.ErrnoException) => callback(err, '', 0),
      );
    };
  }

  /**
   * POSTs `body` to `url` and resolves with the status code, or rejects (refused target,
   * network error, or no answer within `timeoutMs`). The answer's body is read and dropped.
   */
  async post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<number> {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host)) {
      const refused = this.refusal(host);
      if (refused) throw Object.assign(new Error(`Refused: ${refused}`), { code: 'EREFUSED_TARGET' });
    }
    const client = parsed.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        parsed,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
          lookup: this.lookup(),
          timeout: timeoutMs,
          // No redirects are followed (http.request never does): a 3xx is the receiver's answer.
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      const deadline = setTimeout(() => req.destroy(new Error(`No answer within ${timeoutMs / 1000} s`)), timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`No answer within ${timeoutMs / 1000} s`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
