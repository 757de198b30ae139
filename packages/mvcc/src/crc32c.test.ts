import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Crc32c } from "./crc32c.js";

describe("crc32c", () => {
  it("matches the standard check value", () => {
    assert.equal(new Crc32c().update(new TextEncoder().encode("123456789")).value, 0xe3069283);
    assert.equal(new Crc32c().update(new TextEncoder().encode("1234")).update(new TextEncoder().encode("56789")).value, 0xe3069283);
  });
});
