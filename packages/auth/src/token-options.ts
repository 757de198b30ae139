import { readFileSync } from "node:fs";
import type { Clock } from "./clock.js";
import { AuthError } from "./errors.js";
import { JwtTokenProvider, parseJwtSignMethod } from "./jwt-token.js";
import { SimpleTokenProvider } from "./simple-token.js";
import type { TokenProvider } from "./token-provider.js";

const JWT_OPTIONS = new Set(["sign-method", "pub-key", "priv-key", "ttl"]);

/**
 * Splits etcd's `--auth-token` value, `type[,name=value…]` (e.g. `jwt,pub-key=a.pub,priv-key=a.key,
 * sign-method=RS256,ttl=10m`). A malformed pair or a repeated name is refused, as in etcd.
 */
export function parseAuthTokenFlag(flag: string): { type: string; options: Map<string, string> } {
  const [type = "", ...pairs] = flag.split(",");
  const options = new Map<string, string>();
  for (const pair of pairs) {
    const parts = pair.split("=");
    if (parts.length !== 2) throw new AuthError("InvalidTokenOptions", `auth: invalid auth options ${JSON.stringify(flag)}`);
    const [name, value] = parts as [string, string];
    if (options.has(name)) {
      throw new AuthError("InvalidTokenOptions", `auth: invalid auth options, duplicated parameter ${JSON.stringify(name)}`);
    }
    options.set(name, value);
  }
  return { type, options };
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's `time.ParseDuration` (what etcd uses for `ttl=`), in milliseconds. */
export function parseGoDuration(text: string): number {
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.test(text);
  if (text === "0") return 0;
  if (!match) throw new AuthError("InvalidTokenOptions", `auth: invalid duration ${JSON.stringify(text)}`);
  const sign = text.startsWith("-") ? -1 : 1;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
  }
  return sign * total;
}

export interface TokenProviderOptions {
  readonly clock?: Clock;
  /** `--auth-token-ttl` for simple tokens (etcd 3.4: seconds, default 300). */
  readonly simpleTokenTtlMs?: number;
  /** Reads key files named in the flag; node's readFileSync by default. */
  readonly readFile?: (path: string) => Uint8Array;
}

/** The provider for etcd's `--auth-token` flag (`simple`, the default, or `jwt,…`). */
export function newTokenProvider(flag: string, options: TokenProviderOptions = {}): TokenProvider {
  const { type, options: opts } = parseAuthTokenFlag(flag);
  switch (type) {
    case "simple":
      return new SimpleTokenProvider({ ttlMs: options.simpleTokenTtlMs, clock: options.clock });
    case "jwt": {
      const unknown = [...opts.keys()].filter((k) => !JWT_OPTIONS.has(k));
      if (unknown.length > 0) {
        throw new AuthError("InvalidTokenOptions", `auth: unknown JWT options ${unknown.join(", ")}`);
      }
      const readFile = options.readFile ?? ((path: string) => readFileSync(path));
      const signMethod = parseJwtSignMethod(opts.get("sign-method") ?? "");
      const ttlText = opts.get("ttl");
      const privPath = opts.get("priv-key");
      const pubPath = opts.get("pub-key");
      return new JwtTokenProvider({
        signMethod,
        privateKey: privPath ? readFile(privPath) : undefined,
        publicKey: pubPath ? readFile(pubPath) : undefined,
        ttlMs: ttlText ? parseGoDuration(ttlText) : undefined,
        clock: options.clock,
      });
    }
    default:
      throw new AuthError("InvalidTokenOptions", `auth: invalid auth options: unknown token type ${JSON.stringify(type)}`);
  }
}
