import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_LEASE_ID, cryptoRandomSource, randomLeaseId } from "./lease-id.js";
import type { RandomSource } from "./lease-id.js";

/** Hands out the given 8-byte blocks in turn. */
function scriptedRandom(...blocks: string[]): RandomSource {
  let next = 0;
  return {
    fill(bytes) {
      const block = blocks[next++];
      if (block === undefined) throw new Error("scripted random source ran out");
      bytes.set(Buffer.from(block, "hex"));
    },
  };
}

describe("randomLeaseId", () => {
  it("takes 63 bits from the random source: always positive", () => {
    assert.equal(randomLeaseId(scriptedRandom("ffffffffffffffff")), MAX_LEASE_ID);
    assert.equal(randomLeaseId(scriptedRandom("8000000000000001")), 1n);
    assert.equal(randomLeaseId(scriptedRandom("0123456789abcdef")), 0x0123456789abcdefn);
  });

  it("never returns 0 (no lease) and skips taken IDs", () => {
    const random = scriptedRandom("0000000000000000", "8000000000000000", "0000000000000007", "0000000000000009");
    assert.equal(
      randomLeaseId(random, (id) => id === 7n),
      9n,
    );
  });

  it("the crypto source yields distinct positive IDs", () => {
    const ids = new Set<bigint>();
    for (let i = 0; i < 1000; i++) {
      const id = randomLeaseId(cryptoRandomSource);
      assert.ok(id > 0n && id <= MAX_LEASE_ID);
      ids.add(id);
    }
    assert.equal(ids.size, 1000);
  });
});
