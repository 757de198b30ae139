import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema } from "@etcd-ts/api";

import { peekRequestId, sameBytes } from "./request-id.js";

describe("peekRequestId", () => {
  it("reads the ID of an encoded request, with or without a header", () => {
    for (const ID of [1n, 127n, 128n, 0x1234n << 48n, (1n << 64n) - 1n, (0xabcdn << 48n) | (BigInt(Date.now()) << 8n)]) {
      const plain = toBinary(
        InternalRaftRequestSchema,
        create(InternalRaftRequestSchema, { ID, request: { case: "compaction", value: { revision: 5n } } }),
      );
      assert.equal(peekRequestId(plain), ID);
      const withHeader = toBinary(
        InternalRaftRequestSchema,
        create(InternalRaftRequestSchema, {
          ID,
          header: { ID, username: "u".repeat(300), authRevision: 7n },
          request: { case: "put", value: { key: new Uint8Array([1]) } },
        }),
      );
      assert.equal(peekRequestId(withHeader), ID);
    }
  });

  it("gives undefined when there is no ID or the bytes are cut short", () => {
    assert.equal(peekRequestId(new Uint8Array()), undefined);
    assert.equal(peekRequestId(toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, {}))), undefined);
    const encoded = toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { ID: 1n << 60n }));
    assert.equal(peekRequestId(encoded.subarray(0, encoded.length - 1)), undefined);
    assert.equal(peekRequestId(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), undefined);
  });
});

describe("sameBytes", () => {
  it("compares contents", () => {
    assert.ok(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
    assert.ok(!sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
    assert.ok(!sameBytes(new Uint8Array([1]), new Uint8Array([1, 2])));
  });
});
