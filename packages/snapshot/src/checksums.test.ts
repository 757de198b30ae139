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

test("CRC-32C's 8-bytes-at-a-time path agrees with the bytewise definition at every length and split", () => {
  const reference = (bytes: Uint8Array): number => {
    let c = 0xffffffff;
    for (const byte of bytes) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let length = 0; length <= data.length; length++) {
    const whole = new Crc32c();
    whole.write(data.subarray(0, length));
    assert.equal(whole.sum32(), reference(data.subarray(0, length)), `length ${length}`);
    const split = new Crc32c();
    split.write(data.subarray(0, length >> 1));
    split.write(data.subarray(length >> 1, length));
    assert.equal(split.sum32(), whole.sum32(), `split ${length}`);
  }
  // 32 bytes of zeros: the iSCSI (RFC 3720) test vector.
  const zeros = new Crc32c();
  zeros.write(new Uint8Array(32));
  assert.equal(zeros.sum32(), 0x8a9136aa);
});

test("FNV-1a 64 matches the reference vectors", () => {
  assert.equal(fnv1a64(ascii("")), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(ascii("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(ascii("foobar")), 0x85944171f73967e8n);
});
