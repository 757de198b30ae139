import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthStore } from "./auth-store.js";
import { enableWithRoot, openStoreFixture } from "./testing/store-fixture.js";
import { bcryptCostOf, comparePassword, hashPassword, isBcryptHash, normalizeBcryptCost } from "./password.js";
import { AUTH_BUCKET, AUTH_ROLES_BUCKET, AUTH_USERS_BUCKET } from "@etcd-ts/schema";
import { SimpleTokenProvider } from "./simple-token.js";

describe("passwords", () => {
  it("--bcrypt-cost: the configured cost is used for new hashes", async () => {
    const f = await openStoreFixture({ bcryptCost: 5 });
    assert.equal(f.store.bcryptCost, 5);
    const hash = await f.store.preparePassword("pw");
    assert.equal(bcryptCostOf(hash), 5);
    assert.equal(await comparePassword("pw", hash), true);
  });

  it("--bcrypt-cost defaults to 10 and falls back to 10 outside bcrypt's bounds, as etcd does", () => {
    const store = (bcryptCost?: number) => new AuthStore({ tokenProvider: new SimpleTokenProvider(), bcryptCost });
    assert.equal(store().bcryptCost, 10);
    assert.equal(store(3).bcryptCost, 10);
    assert.equal(store(32).bcryptCost, 10);
    assert.equal(store(4).bcryptCost, 4);
    assert.equal(store(31).bcryptCost, 31);
    assert.equal(normalizeBcryptCost(Number.NaN), 10);
    assert.equal(normalizeBcryptCost(7.5), 10);
  });

  it("preparePassword returns a bcrypt hash, salted (two hashes of one password differ)", async () => {
    const f = await openStoreFixture();
    const a = await f.store.preparePassword("same");
    const b = await f.store.preparePassword("same");
    assert.ok(isBcryptHash(a));
    assert.notEqual(a, b);
    assert.ok(!a.includes("same"));
  });

  it("the clear password is nowhere in the backend after UserAdd and UserChangePassword", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f, "Root-Clear-Text-1");
    const hashedPassword = await f.store.preparePassword("Changed-Clear-Text-2");
    await f.mutate((t) => f.store.userChangePassword(t, { name: "root", hashedPassword }));
    const everything = f.backend.view((t) =>
      [AUTH_BUCKET, AUTH_USERS_BUCKET, AUTH_ROLES_BUCKET].flatMap((b) =>
        [...t.range(b)].map((e) => Buffer.from(e.value).toString("latin1")),
      ),
    );
    for (const clear of ["Root-Clear-Text-1", "Changed-Clear-Text-2"]) {
      assert.ok(!everything.some((v) => v.includes(clear)), clear);
    }
    assert.equal(await f.store.checkPassword("root", "Changed-Clear-Text-2"), f.store.revision);
  });

  it("hashes made by etcd (Go's $2a$) verify, and ours ($2b$) are ones Go reads", async () => {
    const ours = await hashPassword("pw", 4);
    assert.match(ours, /^\$2b\$04\$/);
    // For ASCII passwords $2a$ and $2b$ compute the same hash; Go writes $2a$.
    const goStyle = `$2a$${ours.slice(4)}`;
    assert.equal(await comparePassword("pw", goStyle), true);
    assert.equal(await comparePassword("nope", goStyle), false);
  });

  it("comparePassword is false for anything that is not a bcrypt hash (an empty no-password entry)", async () => {
    assert.equal(await comparePassword("", ""), false);
    assert.equal(await comparePassword("pw", "pw"), false);
    assert.equal(isBcryptHash("$2a$10$short"), false);
  });
});
