import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { isAuthError } from "./errors.js";
import { ManualClock, authErrorOf, enableWithRoot, openStoreFixture } from "./testing/store-fixture.js";
import { JwtTokenProvider } from "./jwt-token.js";
import type { JwtSignMethod } from "./jwt-token.js";
import { SimpleTokenProvider, parseSimpleToken } from "./simple-token.js";
import { newTokenProvider, parseAuthTokenFlag, parseGoDuration } from "./token-options.js";

const MINUTE = 60_000;

function simpleProvider(clock: ManualClock, ttlMs?: number): SimpleTokenProvider {
  let n = 0;
  // Deterministic letters, so tokens are predictable in tests.
  return new SimpleTokenProvider({ clock, ttlMs, randomInt: (max) => n++ % max });
}

describe("simple tokens", () => {
  it("look like etcd's: 16 letters, a dot, the raft index", () => {
    const p = new SimpleTokenProvider();
    p.enable();
    const prefix = p.genTokenPrefix();
    assert.match(prefix, /^[a-zA-Z]{16}$/);
    const token = p.assign("alice", 5, { simpleTokenPrefix: prefix, index: 42 });
    assert.equal(token, `${prefix}.42`);
    assert.deepEqual(parseSimpleToken(token), { prefix, index: 42 });
    assert.equal(parseSimpleToken("no-dot"), undefined);
    assert.equal(parseSimpleToken("a.b.c"), undefined);
    assert.equal(parseSimpleToken("abc.x1"), undefined);
  });

  it("resolve to the user at the store's current revision", () => {
    const clock = new ManualClock();
    const p = simpleProvider(clock);
    p.enable();
    const token = p.assign("alice", 3, { simpleTokenPrefix: p.genTokenPrefix(), index: 1 });
    assert.deepEqual(p.info(token, 9), { username: "alice", revision: 9 });
    assert.equal(p.info("unknownprefixxxx.1", 9), undefined);
  });

  it("expire after the TTL (5 minutes by default), each use refreshing it", () => {
    const clock = new ManualClock();
    const p = simpleProvider(clock);
    p.enable();
    const token = p.assign("alice", 1, { simpleTokenPrefix: p.genTokenPrefix(), index: 1 });
    clock.advance(5 * MINUTE);
    assert.ok(p.info(token, 1), "valid through the TTL");
    clock.advance(4 * MINUTE);
    assert.ok(p.info(token, 1), "the previous use refreshed it");
    clock.advance(5 * MINUTE + 1);
    assert.equal(p.info(token, 1), undefined, "expired");
    assert.equal(p.size, 0);
  });

  it("honour a configured TTL and sweep expired tokens nobody asks about", () => {
    const clock = new ManualClock();
    const p = simpleProvider(clock, 1000);
    p.enable();
    p.assign("a", 1, { simpleTokenPrefix: p.genTokenPrefix(), index: 1 });
    p.assign("b", 1, { simpleTokenPrefix: p.genTokenPrefix(), index: 2 });
    clock.advance(1001);
    assert.equal(p.sweep(), 2);
    assert.equal(p.size, 0);
  });

  it("are bounded per user and in total, the least recently used going first", () => {
    const clock = new ManualClock();
    const p = new SimpleTokenProvider({ clock, maxTokens: 6, maxTokensPerUser: 3 });
    p.enable();
    let index = 0;
    const issue = (user: string) => p.assign(user, 1, { simpleTokenPrefix: p.genTokenPrefix(), index: ++index });
    const [a1, a2, a3] = [issue("alice"), issue("alice"), issue("alice")];
    assert.ok(p.info(a1, 1), "a use makes a1 the most recent of alice's");
    const a4 = issue("alice");
    assert.equal(p.tokensOf("alice"), 3);
    assert.equal(p.info(a2, 1), undefined, "alice's least recently used token went");
    for (const t of [a1, a3, a4]) assert.ok(p.info(t, 1));
    const bobs = [issue("bob"), issue("bob"), issue("bob")];
    assert.equal(p.size, 6);
    const carol = issue("carol");
    assert.equal(p.size, 6);
    assert.equal(p.info(a1, 1), undefined, "the least recently used token of all went");
    for (const t of [a3, a4, ...bobs, carol]) assert.ok(p.info(t, 1));
    // A flood of one user's logins never takes more than its share.
    for (let i = 0; i < 1000; i++) issue("mallory");
    assert.equal(p.tokensOf("mallory"), 3);
    assert.equal(p.size, 6);
    p.invalidateUser("mallory");
    assert.equal(p.tokensOf("mallory"), 0);
    assert.equal(p.size, 3);
  });

  it("refuse at once a token whose random part cannot be one of ours (not 16 letters)", () => {
    const p = simpleProvider(new ManualClock());
    p.enable();
    assert.equal(parseSimpleToken("xxxxxxxxxxxxxxxx.7")?.index, 7);
    for (const forged of ["short.7", "xxxxxxxxxxxxxxxxx.7", "xxxxxxxxxxxxxxx1.7", "xxxxxxxxxxxxxxx-.7", ".7"]) {
      assert.equal(parseSimpleToken(forged), undefined, forged);
      assert.equal(p.info(forged, 1), undefined, forged);
    }
  });

  it("die when auth is disabled, and are not registered while disabled", () => {
    const clock = new ManualClock();
    const p = simpleProvider(clock);
    p.enable();
    const token = p.assign("alice", 1, { simpleTokenPrefix: p.genTokenPrefix(), index: 1 });
    p.disable();
    assert.equal(p.info(token, 1), undefined);
    const t2 = p.assign("alice", 1, { simpleTokenPrefix: p.genTokenPrefix(), index: 2 });
    assert.equal(p.info(t2, 1), undefined);
  });

  it("die when their user is deleted or changes password; other users' tokens live on", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f);
    await f.addUser("alice", "pw");
    await f.addUser("bob", "pw");
    const issue = (name: string, index: number) => f.store.authenticate(name, { simpleTokenPrefix: f.store.genTokenPrefix(), index });
    const alice1 = issue("alice", 10);
    const bob = issue("bob", 11);
    const hashedPassword = await f.store.preparePassword("new");
    await f.mutate((t) => f.store.userChangePassword(t, { name: "alice", hashedPassword }));
    assert.throws(() => f.store.authInfoFromToken(alice1), authErrorOf("InvalidAuthToken"));
    assert.equal(f.store.authInfoFromToken(bob).username, "bob");
    const alice2 = issue("alice", 12);
    await f.mutate((t) => f.store.userDelete(t, "alice"));
    assert.throws(() => f.store.authInfoFromToken(alice2), authErrorOf("InvalidAuthToken"));
    assert.equal(f.store.authInfoFromToken(bob).username, "bob");
    await f.mutate((t) => f.store.authDisable(t));
    assert.throws(() => f.store.authInfoFromToken(bob), authErrorOf("InvalidAuthToken"));
  });

  it("expire through the store with an injected clock (no sleeping)", async () => {
    const clock = new ManualClock();
    const f = await openStoreFixture({ clock });
    await enableWithRoot(f);
    const token = f.store.authenticate("root", { simpleTokenPrefix: f.store.genTokenPrefix(), index: 3 });
    clock.advance(5 * MINUTE + 1);
    assert.throws(() => f.store.authInfoFromToken(token), authErrorOf("InvalidAuthToken"));
  });
});

describe("Authenticate through the store", () => {
  it("password checked before proposing, token issued in apply; the entry carries no password", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f, "rootpw");
    const checkedAt = await f.store.checkPassword("root", "rootpw");
    assert.equal(checkedAt, f.store.revision);
    const prefix = f.store.genTokenPrefix();
    // What the server proposes: { name, simpleToken: prefix } — no password field filled in.
    const token = f.store.authenticate("root", { simpleTokenPrefix: prefix, index: 99 });
    assert.equal(token, `${prefix}.99`);
    assert.deepEqual(f.store.authInfoFromToken(token), { username: "root", revision: f.store.revision });
  });

  it("checkPassword: AuthFailed for a wrong password, an unknown user, a no-password user; AuthNotEnabled when off", async () => {
    const f = await openStoreFixture();
    await assert.rejects(f.store.checkPassword("root", "x"), authErrorOf("AuthNotEnabled"));
    await enableWithRoot(f, "rootpw");
    await f.mutate((t) => f.store.userAdd(t, { name: "svc", noPassword: true }));
    await assert.rejects(f.store.checkPassword("root", "wrong"), authErrorOf("AuthFailed"));
    await assert.rejects(f.store.checkPassword("nobody", "x"), authErrorOf("AuthFailed"));
    await assert.rejects(f.store.checkPassword("svc", ""), authErrorOf("AuthFailed"));
    await assert.rejects(f.store.checkPassword("svc", "anything"), authErrorOf("AuthFailed"));
  });

  it("apply refuses an unknown or no-password user (AuthFailed) and a disabled store (AuthNotEnabled)", async () => {
    const f = await openStoreFixture();
    const params = { simpleTokenPrefix: "abcdefghijklmnop", index: 1 };
    assert.throws(() => f.store.authenticate("root", params), authErrorOf("AuthNotEnabled"));
    await enableWithRoot(f);
    await f.mutate((t) => f.store.userAdd(t, { name: "svc", noPassword: true }));
    assert.throws(() => f.store.authenticate("ghost", params), authErrorOf("AuthFailed"));
    assert.throws(() => f.store.authenticate("svc", params), authErrorOf("AuthFailed"));
  });

  it("a revision change between check and apply is visible, so the server retries as etcd does", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f, "rootpw");
    const checkedAt = await f.store.checkPassword("root", "rootpw");
    await f.mutate((t) => f.store.roleAdd(t, "meanwhile"));
    f.store.authenticate("root", { simpleTokenPrefix: f.store.genTokenPrefix(), index: 5 });
    assert.notEqual(checkedAt, f.store.revision);
  });

  it("InvalidAuthToken for garbage", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f);
    for (const t of ["", "x", "abc.def", "a.1.2"]) assert.throws(() => f.store.authInfoFromToken(t), authErrorOf("InvalidAuthToken"));
  });
});

function jwtKeys(method: JwtSignMethod): { privateKey: string; publicKey: string } {
  const family = method.slice(0, 2);
  if (family === "ES") {
    const namedCurve = { ES256: "P-256", ES384: "P-384", ES512: "P-521" }[method as "ES256"];
    return generateKeyPairSync("ec", {
      namedCurve,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
  }
  return generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
}

const rsa = jwtKeys("RS256");
const ec = jwtKeys("ES256");

describe("JWT tokens", () => {
  for (const [method, keys] of [
    ["RS256", rsa],
    ["PS256", rsa],
    ["ES256", ec],
    ["RS512", rsa],
  ] as const) {
    it(`${method}: claims username, revision, exp; verified with the key`, () => {
      const clock = new ManualClock(1_700_000_000_000);
      const p = new JwtTokenProvider({ signMethod: method, privateKey: keys.privateKey, clock });
      const token = p.assign("alice", 7);
      const [header, payload] = token
        .split(".")
        .slice(0, 2)
        .map((part) => JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>);
      assert.deepEqual(header, { alg: method, typ: "JWT" });
      assert.deepEqual(payload, { exp: 1_700_000_000 + 300, revision: 7, username: "alice" });
      assert.deepEqual(p.info(token), { username: "alice", revision: 7 });
      // A verify-only member (public key only) accepts it but cannot issue tokens.
      const verifier = new JwtTokenProvider({ signMethod: method, publicKey: keys.publicKey, clock });
      assert.equal(verifier.verifyOnly, true);
      assert.deepEqual(verifier.info(token), { username: "alice", revision: 7 });
      assert.throws(
        () => verifier.assign("alice", 7),
        (e) => isAuthError(e, "VerifyOnly"),
      );
    });
  }

  it("HS256 with a shared secret", () => {
    const p = new JwtTokenProvider({ signMethod: "HS256", privateKey: "s3cret", clock: new ManualClock() });
    const token = p.assign("bob", 2);
    assert.deepEqual(p.info(token), { username: "bob", revision: 2 });
    const other = new JwtTokenProvider({ signMethod: "HS256", privateKey: "other", clock: new ManualClock() });
    assert.equal(other.info(token), undefined);
  });

  it("expire after the TTL (default 5 minutes, configurable), judged by the injected clock", () => {
    const clock = new ManualClock(1_700_000_000_000);
    const p = new JwtTokenProvider({ signMethod: "ES256", privateKey: ec.privateKey, clock, ttlMs: 10 * MINUTE });
    const token = p.assign("alice", 1);
    clock.advance(10 * MINUTE);
    assert.ok(p.info(token), "valid through its exp second");
    clock.advance(1000);
    assert.equal(p.info(token), undefined);
  });

  it("refuse tampering, another key, another algorithm and alg=none", () => {
    const clock = new ManualClock();
    const p = new JwtTokenProvider({ signMethod: "RS256", privateKey: rsa.privateKey, clock });
    const token = p.assign("alice", 1);
    const [h, , s] = token.split(".");
    const forgedPayload = Buffer.from(JSON.stringify({ exp: 9_999_999_999, revision: 1, username: "root" })).toString("base64url");
    assert.equal(p.info(`${h}.${forgedPayload}.${s}`), undefined);
    const otherKey = jwtKeys("RS256");
    const other = new JwtTokenProvider({ signMethod: "RS256", privateKey: otherKey.privateKey, clock });
    assert.equal(p.info(other.assign("alice", 1)), undefined);
    const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    assert.equal(p.info(`${none}.${forgedPayload}.`), undefined);
    // HS256 signed with the RSA public key as the secret (the classic confusion attack).
    const hsHeader = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
    const sig = createHmac("sha256", rsa.publicKey).update(`${hsHeader}.${forgedPayload}`).digest("base64url");
    assert.equal(p.info(`${hsHeader}.${forgedPayload}.${sig}`), undefined);
    assert.equal(p.info("not-a-jwt"), undefined);
  });

  it("refuse a segment that is not canonical unpadded base64url (padding, foreign characters, stray bits)", () => {
    const clock = new ManualClock();
    for (const [method, key] of [
      ["RS256", rsa.privateKey],
      ["ES256", ec.privateKey],
      ["HS256", "s3cret"],
    ] as const) {
      const p = new JwtTokenProvider({ signMethod: method, privateKey: key, clock });
      const token = p.assign("alice", 1);
      assert.ok(p.info(token));
      const [h, c, s] = token.split(".") as [string, string, string];
      // etcd 3.4 answers "invalid auth token" to each of these.
      for (const suffix of ["==", "=", "%%", " ", "\n"]) {
        assert.equal(p.info(`${token}${suffix}`), undefined, `${method} signature + ${JSON.stringify(suffix)}`);
        assert.equal(p.info(`${h}${suffix}.${c}.${s}`), undefined, `${method} header + ${JSON.stringify(suffix)}`);
        assert.equal(p.info(`${h}.${c}${suffix}.${s}`), undefined, `${method} claims + ${JSON.stringify(suffix)}`);
      }
      // The same bytes spelt with other (ignored) low bits in the last character.
      const last = s.at(-1)!;
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const unusedBits = (s.length * 6) % 8;
      if (unusedBits > 0) {
        const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
        const twin = `${h}.${c}.${s.slice(0, -1)}${sibling}`;
        assert.deepEqual(Buffer.from(twin.split(".")[2]!, "base64url"), Buffer.from(s, "base64url"));
        assert.equal(p.info(twin), undefined, `${method} non-canonical last character`);
      }
    }
  });

  it("an old revision in the token is refused by the permission checks (AuthOldRevision)", async () => {
    const clock = new ManualClock();
    const tokens = new JwtTokenProvider({ signMethod: "HS256", privateKey: "k", clock });
    const f = await openStoreFixture({ tokenProvider: tokens, clock });
    await enableWithRoot(f);
    const token = f.store.authenticate("root", { simpleTokenPrefix: f.store.genTokenPrefix(), index: 1 });
    const info = f.store.authInfoFromToken(token);
    assert.deepEqual(info, { username: "root", revision: f.store.revision });
    await f.mutate((t) => f.store.roleAdd(t, "x"));
    const stale = f.store.authInfoFromToken(token);
    assert.equal(stale.revision, f.store.revision - 1);
    assert.throws(() => f.store.isRangePermitted(stale, new Uint8Array([1])), authErrorOf("AuthOldRevision"));
  });

  it("refuse bad configurations: wrong key type or curve, mismatched pair, no key", () => {
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "ES256", privateKey: rsa.privateKey }),
      (e) => isAuthError(e, "InvalidSignMethod"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "ES384", privateKey: ec.privateKey }),
      (e) => isAuthError(e, "InvalidSignMethod"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "RS256", privateKey: ec.privateKey }),
      (e) => isAuthError(e, "InvalidSignMethod"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "RS256", privateKey: rsa.privateKey, publicKey: jwtKeys("RS256").publicKey }),
      (e) => isAuthError(e, "KeyMismatch"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "RS256" }),
      (e) => isAuthError(e, "MissingKey"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "HS256" }),
      (e) => isAuthError(e, "MissingKey"),
    );
    assert.throws(
      () => new JwtTokenProvider({ signMethod: "XX256" as JwtSignMethod, privateKey: "k" }),
      (e) => isAuthError(e, "InvalidSignMethod"),
    );
  });
});

describe("--auth-token flag", () => {
  it("parses etcd's syntax and refuses malformed or repeated options", () => {
    const { type, options } = parseAuthTokenFlag("jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256,ttl=10m");
    assert.equal(type, "jwt");
    assert.deepEqual(Object.fromEntries(options), { "pub-key": "a.pub", "priv-key": "a.key", "sign-method": "RS256", ttl: "10m" });
    assert.throws(
      () => parseAuthTokenFlag("jwt,ttl"),
      (e) => isAuthError(e, "InvalidTokenOptions"),
    );
    assert.throws(
      () => parseAuthTokenFlag("jwt,ttl=1m,ttl=2m"),
      (e) => isAuthError(e, "InvalidTokenOptions"),
    );
  });

  it("parses Go durations", () => {
    assert.equal(parseGoDuration("5m"), 5 * MINUTE);
    assert.equal(parseGoDuration("1h30m"), 90 * MINUTE);
    assert.equal(parseGoDuration("1.5s"), 1500);
    assert.equal(parseGoDuration("300ms"), 300);
    assert.throws(
      () => parseGoDuration("5 minutes"),
      (e) => isAuthError(e, "InvalidTokenOptions"),
    );
  });

  it("builds the simple provider (default TTL or --auth-token-ttl) and the jwt provider from key files", () => {
    const simple = newTokenProvider("simple", { simpleTokenTtlMs: 1000 });
    assert.equal(simple.type, "simple");
    assert.equal((simple as SimpleTokenProvider).ttlMs, 1000);
    const files: Record<string, string> = { "/k/priv.pem": rsa.privateKey, "/k/pub.pem": rsa.publicKey };
    const readFile = (path: string) => Buffer.from(files[path]!);
    const jwt = newTokenProvider("jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=RS256,ttl=2m", { readFile });
    assert.equal(jwt.type, "jwt");
    assert.equal((jwt as JwtTokenProvider).ttlMs, 2 * MINUTE);
    assert.ok(jwt.info(jwt.assign("a", 1, { simpleTokenPrefix: "", index: 1 }), 1));
    assert.throws(
      () => newTokenProvider("jwt,priv-key=/k/priv.pem", { readFile }),
      (e) => isAuthError(e, "InvalidSignMethod"),
    );
    assert.throws(
      () => newTokenProvider("opaque"),
      (e) => isAuthError(e, "InvalidTokenOptions"),
    );
    assert.throws(
      () => newTokenProvider("jwt,sign-method=HS256,priv-key=/k/priv.pem,colour=red", { readFile }),
      (e) => isAuthError(e, "InvalidTokenOptions"),
    );
  });
});
