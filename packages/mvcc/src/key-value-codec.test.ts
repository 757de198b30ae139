import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { KeyValueSchema } from "@etcd-ts/api";
import { decodeKeyValue, encodeKeyValue } from "./key-value-codec.js";
import { isMvccError } from "./errors.js";

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("KeyValue codec", () => {
  const cases = [
    { key: bytes(3, 1), createRevision: 2, modRevision: 2, version: 1, value: bytes(5, 2), lease: 0n },
    { key: bytes(1, 3), createRevision: 0, modRevision: 9, version: 0, value: new Uint8Array(0), lease: 0n },
    {
      key: bytes(300, 4),
      createRevision: 2 ** 40,
      modRevision: 2 ** 53 - 1,
      version: 127,
      value: bytes(70000, 5),
      lease: 0x7fff_ffff_ffff_ffffn,
    },
    { key: bytes(2, 6), createRevision: 128, modRevision: 16384, version: 2 ** 31, value: bytes(1, 7), lease: -1n },
    { key: bytes(2, 6), createRevision: 1, modRevision: 1, version: 1, value: bytes(1, 7), lease: 0x694d_8a1b_2c3d_4e5fn },
  ];

  it("writes exactly what protobuf writes", () => {
    for (const c of cases) {
      const ours = encodeKeyValue(c.key, c.createRevision, c.modRevision, c.version, c.value, c.lease);
      const theirs = toBinary(
        KeyValueSchema,
        create(KeyValueSchema, {
          key: c.key,
          createRevision: BigInt(c.createRevision),
          modRevision: BigInt(c.modRevision),
          version: BigInt(c.version),
          value: c.value,
          lease: c.lease,
        }),
      );
      assert.deepEqual(ours, theirs);
      assert.deepEqual(decodeKeyValue(ours), fromBinary(KeyValueSchema, theirs));
    }
  });

  it("decodes what protobuf writes, skipping unknown fields", () => {
    const known = encodeKeyValue(bytes(3, 1), 5, 6, 2, bytes(4, 2), 9n);
    // field 7 varint, field 8 fixed64, field 9 bytes, field 10 fixed32, field 100 varint (two-byte tag)
    const unknown = Uint8Array.from([
      0x38, 0x96, 0x01, 0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0x4a, 2, 0xaa, 0xbb, 0x55, 1, 2, 3, 4, 0xa0, 0x06, 0x01,
    ]);
    const kv = decodeKeyValue(Uint8Array.from([...unknown, ...known]));
    assert.deepEqual(kv, fromBinary(KeyValueSchema, known));
  });

  it("rejects truncated input", () => {
    const good = encodeKeyValue(bytes(3, 1), 5, 6, 2, bytes(4, 2), 9n);
    for (const cut of [1, 4, good.length - 1]) {
      assert.throws(
        () => decodeKeyValue(good.subarray(0, cut)),
        (e) => isMvccError(e, "Corrupt"),
      );
    }
  });
});

describe("decodeIndexFields", () => {
  it("reads key, create revision, version and lease as decodeKeyValue does", async () => {
    const { decodeIndexFields } = await import("./key-value-codec.js");
    const encoded = encodeKeyValue(bytes(5, 9), 2 ** 40, 2 ** 41, 77, bytes(100, 3), -5n);
    const out = { key: new Uint8Array(0), createRevision: 0, version: 0, lease: 0n };
    decodeIndexFields(encoded, out);
    assert.deepEqual(out, { key: bytes(5, 9), createRevision: 2 ** 40, version: 77, lease: -5n });
    decodeIndexFields(encodeKeyValue(bytes(1, 1), 0, 3, 0, new Uint8Array(0), 0n), out);
    assert.deepEqual(out, { key: bytes(1, 1), createRevision: 0, version: 0, lease: 0n });
  });
});
