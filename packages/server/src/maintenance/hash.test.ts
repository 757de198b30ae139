import { test } from "node:test";
import assert from "node:assert/strict";
import { Crc32c } from "@etcd-ts/mvcc";

test("CRC-32C matches the standard check value", () => {
  // The CRC-32C of "123456789" is 0xe3069283 (RFC 3720).
  assert.equal(new Crc32c().update(new TextEncoder().encode("123456789")).value, 0xe3069283);
  assert.equal(new Crc32c().update(new TextEncoder().encode("1234")).update(new TextEncoder().encode("56789")).value, 0xe3069283);
});
