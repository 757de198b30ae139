import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { InternalRaftRequestSchema, PutRequestSchema, type InternalRaftRequest } from "@etcd-ts/api";

import { encodeProposal } from "./proposal-encoding.js";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

function assertSameAsProtobufEs(message: InternalRaftRequest): void {
  assert.deepEqual(encodeProposal(message), toBinary(InternalRaftRequestSchema, message));
}

describe("encodeProposal", () => {
  it("encodes puts byte for byte as protobuf-es", () => {
    const ids = [0n, 1n, 127n, 128n, 0x1234n << 48n, (1n << 64n) - 1n, (0xabcdn << 48n) | (BigInt(Date.now()) << 8n)];
    const sizes = [0, 1, 127, 128, 300, 16383, 16384, 70_000];
    const leases = [0n, 1n, 0x7fffffffffffffffn, -1n, -(1n << 63n), 1n << 35n];
    let n = 0;
    for (const ID of ids)
      for (const keySize of sizes)
        for (const valueSize of sizes)
          for (const lease of leases) {
            const flags = n++ % 8;
            const put = create(PutRequestSchema, {
              key: bytes(keySize, 0x61),
              value: bytes(valueSize, 0x80 | (n & 0x7f)),
              lease,
              prevKv: (flags & 1) !== 0,
              ignoreValue: (flags & 2) !== 0,
              ignoreLease: (flags & 4) !== 0,
            });
            assertSameAsProtobufEs(create(InternalRaftRequestSchema, { ID, request: { case: "put", value: put } }));
          }
  });

  it("takes a put of views into a larger buffer as it is", () => {
    const backing = bytes(1000, 7);
    const put = create(PutRequestSchema, { key: backing.subarray(10, 18), value: backing.subarray(100, 356) });
    assertSameAsProtobufEs(create(InternalRaftRequestSchema, { ID: 5n, request: { case: "put", value: put } }));
  });

  it("leaves headers, unknown fields and other requests to protobuf-es", () => {
    const put = create(PutRequestSchema, { key: bytes(3, 1), value: bytes(3, 2) });
    assertSameAsProtobufEs(
      create(InternalRaftRequestSchema, {
        ID: 9n,
        header: { ID: 9n, username: "ü", authRevision: 3n },
        request: { case: "put", value: put },
      }),
    );
    const withUnknown = create(PutRequestSchema, { key: bytes(3, 1) });
    withUnknown.$unknown = [{ no: 99, wireType: WireType.Varint, data: new Uint8Array([5]) }];
    assertSameAsProtobufEs(create(InternalRaftRequestSchema, { ID: 9n, request: { case: "put", value: withUnknown } }));
    assertSameAsProtobufEs(create(InternalRaftRequestSchema, { ID: 9n, request: { case: "compaction", value: { revision: 5n } } }));
    assertSameAsProtobufEs(create(InternalRaftRequestSchema, { ID: 9n, request: { case: "put", value: create(PutRequestSchema) } }));
  });
});
