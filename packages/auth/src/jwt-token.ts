import { KeyObject, constants, createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify } from "node:crypto";
import { systemClock } from "./clock.js";
import type { Clock } from "./clock.js";
import { AuthError } from "./errors.js";
import type { AuthInfo, TokenProvider } from "./token-provider.js";

export const JWT_SIGN_METHODS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

/** etcd's default JWT lifetime. */
export const DEFAULT_JWT_TTL_MS = 5 * 60 * 1000;

/** PEM text or bytes, or a node KeyObject; for HS* the raw secret (etcd reads the priv-key file as is). */
export type JwtKeyInput = string | Uint8Array | KeyObject;

export interface JwtTokenOptions {
  readonly signMethod: JwtSignMethod;
  /** Needed to issue tokens; for HS* the shared secret. */
  readonly privateKey?: JwtKeyInput;
  /** Enough to verify tokens (a verify-only member); checked against the private key when both given. */
  readonly publicKey?: JwtKeyInput;
  readonly ttlMs?: number;
  readonly clock?: Clock;
}

const HASH: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };
const EC_CURVE: Record<string, string> = { "256": "prime256v1", "384": "secp384r1", "512": "secp521r1" };

function base64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString("base64url");
}

/**
 * A JWT segment as unpadded base64url in its one canonical spelling, or undefined. Node's decoder skips
 * characters outside the alphabet, padding and stray trailing bits, so `sig==`, `sig%%` or a last
 * character with other low bits would decode to the same bytes; etcd's decoder (Go's RawURLEncoding)
 * refuses padding and foreign characters, and a token this member issued is always canonical.
 */
function decodeSegment(segment: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.toString("base64url") === segment ? bytes : undefined;
}

function isJwtSignMethod(method: string): method is JwtSignMethod {
  return (JWT_SIGN_METHODS as readonly string[]).includes(method);
}

export function parseJwtSignMethod(method: string): JwtSignMethod {
  if (!isJwtSignMethod(method)) {
    throw new AuthError("InvalidSignMethod", `auth: invalid auth signature method ${JSON.stringify(method)}`);
  }
  return method;
}

function asPrivateKey(input: JwtKeyInput): KeyObject {
  if (input instanceof KeyObject) return input;
  return createPrivateKey({ key: Buffer.from(input) });
}

function asPublicKey(input: JwtKeyInput): KeyObject {
  if (input instanceof KeyObject) return input.type === "private" ? createPublicKey(input) : input;
  return createPublicKey({ key: Buffer.from(input) });
}

function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  const da = a.export({ format: "der", type: "spki" });
  const db = b.export({ format: "der", type: "spki" });
  return da.length === db.length && timingSafeEqual(da, db);
}

/**
 * Signed, self-contained tokens (etcd's `--auth-token jwt,…`): claims `username`, `revision` (the auth
 * revision at issue, so a later user/role change makes the token old) and `exp` (seconds; TTL from
 * issue). Nothing is kept per token, so deleting a user or disabling auth does not revoke a JWT by
 * itself — the revision bump that both cause does: every permission check refuses an old revision.
 */
export class JwtTokenProvider implements TokenProvider {
  readonly type = "jwt";
  readonly signMethod: JwtSignMethod;
  readonly ttlMs: number;
  private readonly clock: Clock;
  private readonly hmacSecret: Buffer | undefined;
  private readonly signingKey: KeyObject | undefined;
  private readonly verifyingKey: KeyObject | undefined;
  private readonly encodedHeader: string;

  constructor(options: JwtTokenOptions) {
    this.signMethod = parseJwtSignMethod(options.signMethod);
    this.ttlMs = options.ttlMs !== undefined && options.ttlMs > 0 ? options.ttlMs : DEFAULT_JWT_TTL_MS;
    this.clock = options.clock ?? systemClock;
    this.encodedHeader = base64url(JSON.stringify({ alg: this.signMethod, typ: "JWT" }));
    const family = this.signMethod.slice(0, 2);
    const bits = this.signMethod.slice(2);

    if (family === "HS") {
      const secret = options.privateKey;
      if (secret === undefined || (typeof secret !== "string" && !(secret instanceof Uint8Array))) {
        throw new AuthError("MissingKey", "auth: missing key data (HS* needs the secret as priv-key)");
      }
      if (secret.length === 0) throw new AuthError("MissingKey", "auth: missing key data");
      this.hmacSecret = Buffer.from(secret);
      return;
    }

    let privateKey: KeyObject | undefined;
    let publicKey: KeyObject | undefined;
    try {
      if (options.privateKey !== undefined) privateKey = asPrivateKey(options.privateKey);
      if (options.publicKey !== undefined) publicKey = asPublicKey(options.publicKey);
    } catch (e) {
      throw new AuthError("MissingKey", `auth: cannot parse the ${this.signMethod} key: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (privateKey === undefined && publicKey === undefined) {
      throw new AuthError("MissingKey", "auth: missing key data");
    }
    const derivedPublic = privateKey === undefined ? undefined : createPublicKey(privateKey);
    if (publicKey !== undefined && derivedPublic !== undefined && !samePublicKey(publicKey, derivedPublic)) {
      throw new AuthError("KeyMismatch", "auth: public and private keys don't match");
    }
    const keyForChecks = (derivedPublic ?? publicKey)!;
    const keyType = keyForChecks.asymmetricKeyType;
    if (family === "ES") {
      const curve = keyForChecks.asymmetricKeyDetails?.namedCurve;
      if (keyType !== "ec" || curve !== EC_CURVE[bits]) {
        throw new AuthError(
          "InvalidSignMethod",
          `auth: ${this.signMethod} needs an EC ${EC_CURVE[bits]} key, got ${keyType} ${curve ?? ""}`,
        );
      }
    } else if (keyType !== "rsa" && keyType !== "rsa-pss") {
      throw new AuthError("InvalidSignMethod", `auth: ${this.signMethod} needs an RSA key, got ${keyType}`);
    }
    this.signingKey = privateKey;
    this.verifyingKey = publicKey ?? derivedPublic;
  }

  /** True when only a public key was given: this member verifies tokens but cannot issue them. */
  get verifyOnly(): boolean {
    return this.hmacSecret === undefined && this.signingKey === undefined;
  }

  enable(): void {}
  disable(): void {}
  invalidateUser(_username: string): void {}

  genTokenPrefix(): string {
    return "";
  }

  assign(username: string, revision: number): string {
    if (this.verifyOnly) {
      throw new AuthError("VerifyOnly", "auth: token signing attempted with verify-only key");
    }
    // Keys in jwt-go's (sorted) order, so tokens look like etcd's.
    const claims = { exp: Math.floor((this.clock.now() + this.ttlMs) / 1000), revision, username };
    const signingInput = `${this.encodedHeader}.${base64url(JSON.stringify(claims))}`;
    return `${signingInput}.${this.signature(signingInput).toString("base64url")}`;
  }

  info(token: string): AuthInfo | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const headerBytes = decodeSegment(headerPart);
    const payloadBytes = decodeSegment(payloadPart);
    const signature = decodeSegment(signaturePart);
    if (headerBytes === undefined || payloadBytes === undefined || signature === undefined) return undefined;
    let header: unknown;
    let claims: unknown;
    try {
      header = JSON.parse(headerBytes.toString("utf8"));
      claims = JSON.parse(payloadBytes.toString("utf8"));
    } catch {
      return undefined;
    }
    // The algorithm is ours, never the token's choice (no "none", no HS256-with-the-public-key).
    if (typeof header !== "object" || header === null || (header as { alg?: unknown }).alg !== this.signMethod) {
      return undefined;
    }
    if (!this.verifySignature(`${headerPart}.${payloadPart}`, signature)) return undefined;
    if (typeof claims !== "object" || claims === null) return undefined;
    const { username, revision, exp, nbf } = claims as Record<string, unknown>;
    if (typeof username !== "string" || typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0) {
      return undefined;
    }
    const nowSeconds = Math.floor(this.clock.now() / 1000);
    // jwt-go's rule: valid through the exp second itself.
    if (typeof exp !== "number" || nowSeconds > exp) return undefined;
    if (nbf !== undefined && (typeof nbf !== "number" || nowSeconds < nbf)) return undefined;
    return { username, revision };
  }

  private signature(signingInput: string): Buffer {
    const family = this.signMethod.slice(0, 2);
    const hash = HASH[this.signMethod.slice(2)]!;
    if (family === "HS") return createHmac(hash, this.hmacSecret!).update(signingInput).digest();
    if (family === "ES") return sign(hash, Buffer.from(signingInput), { key: this.signingKey!, dsaEncoding: "ieee-p1363" });
    if (family === "PS") {
      return sign(hash, Buffer.from(signingInput), {
        key: this.signingKey!,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    }
    return sign(hash, Buffer.from(signingInput), this.signingKey!);
  }

  private verifySignature(signingInput: string, signature: Buffer): boolean {
    const family = this.signMethod.slice(0, 2);
    const hash = HASH[this.signMethod.slice(2)]!;
    try {
      if (family === "HS") {
        const expected = createHmac(hash, this.hmacSecret!).update(signingInput).digest();
        return expected.length === signature.length && timingSafeEqual(expected, signature);
      }
      const data = Buffer.from(signingInput);
      if (family === "ES") {
        return verify(hash, data, { key: this.verifyingKey!, dsaEncoding: "ieee-p1363" }, signature);
      }
      if (family === "PS") {
        return verify(
          hash,
          data,
          { key: this.verifyingKey!, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          signature,
        );
      }
      return verify(hash, data, this.verifyingKey!, signature);
    } catch {
      return false;
    }
  }
}
