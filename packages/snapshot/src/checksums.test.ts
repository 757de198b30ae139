import assert from "node:assert/strict";
import { test } from "node:test";
import { Crc32c, fnv1a64 } from "./checksums.js";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

test("CRC-32C matches the Castagnoli check value and accumulates across writes", () => {
  const whole = new Crc32c();
  whole.write(ascii("123456789"));
  assert.equal(whole.sum32(), 0xe3069283);
  const pieces = new Crc32c();
  pieces.write(ascii("1234"));
  pieces.write(ascii(""));
  pieces.write(ascii("56789"));
  assert.equal(pieces.sum32(), 0xe3069283);
  assert.equal(new Crc32c().sum32(), 0);
});

test("FNV-1a 64 matches the reference vectors", () => {
  assert.equal(fnv1a64(ascii("")), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(ascii("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(ascii("foobar")), 0x85944171f73967e8n);
});
