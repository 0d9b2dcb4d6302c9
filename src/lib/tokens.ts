import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';

export interface AccessClaims {
  /** user id */
  sub: string;
  /** device (session) id, so a revoked device's access tokens stop working too */
  sid: number;
  role: string;
}

export class TokenService {
  // A key object, not the string: given a string, jsonwebtoken first tries (and fails) to
  // read it as a PEM public key on every verify, which took a tenth of the server's time.
  private readonly secret: KeyObject;
  /**
   * Tokens already verified, with their claims: a client presents the same token on every
   * request and socket operation until it expires, and checking the signature again each
   * time was a visible part of a small operation's cost. Expiry is still checked every time.
   */
  private readonly verified = new LRUCache<string, AccessClaims & { exp: number }>({ max: 10_000 });

  constructor(
    secret: string,
    private readonly accessTtlSeconds: number,
  ) {
    this.secret = createSecretKey(Buffer.from(secret));
  }

  /** `ttlSeconds` lengthens a cookie session's token; the device row still ends it at sign-out. */
  signAccess(claims: AccessClaims, ttlSeconds = this.accessTtlSeconds): string {
    return jwt.sign(claims, this.secret, { algorithm: 'HS256', expiresIn: ttlSeconds });
  }

  /** An HMAC of `data` (file links), keyed by the same secret as the tokens. */
  signLink(data: string): string {
    return createHmac('sha256', this.secret).update(`link:${data}`).digest('base64url');
  }

  verifyLink(data: string, signature: string): boolean {
    const expected = Buffer.from(this.signLink(data));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  /** The claims of a valid token; throws a `TokenError` saying why otherwise. */
  verifyAccess(token: string): AccessClaims & { exp: number } {
    const known = this.verified.get(token);
    if (known) {
      if (known.exp * 1000 <= Date.now()) throw new TokenError('expired');
      return known;
    }
    try {
      const payload = jwt.verify(token, this.secret, { algorithms: ['HS256'] });
      if (typeof payload !== 'object' || typeof payload.sub !== 'string' || typeof payload.sid !== 'number') {
        throw new TokenError('malformed');
      }
      const claims = payload as AccessClaims & { exp: number };
      this.verified.set(token, claims);
      return claims;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      throw new TokenError(err instanceof jwt.TokenExpiredError ? 'expired' : 'invalid');
    }
  }
}

export class TokenError extends Error {
  constructor(readonly reason: 'expired' | 'invalid' | 'malformed') {
    super(`access token ${reason}`);
  }
}

/** An opaque refresh token; only its SHA-256 is stored, so a database leak yields no sessions. */
export function newOpaqueToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashOpaqueToken(token) };
}

export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
