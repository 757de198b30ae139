import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { KeyValueSchema, RangeResponseSchema, type RangeResponse } from "@etcd-ts/api";

import { encodeRangeResponse, encodeRangeResponseInSteps } from "./range-response-encoding.js";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

function assertSameAsProtobufEs(response: RangeResponse): void {
  assert.deepEqual(new Uint8Array(encodeRangeResponse(response)), toBinary(RangeResponseSchema, response));
}

describe("encodeRangeResponse", () => {
  it("encodes responses byte for byte as protobuf-es", () => {
    const sizes = [0, 1, 127, 128, 16384];
    const numbers = [0n, 1n, 127n, 128n, 1n << 35n, (1n << 53n) - 1n];
    const leases = [0n, 1n, 0x7fffffffffffffffn, -1n, -(1n << 63n)];
    const headers = [undefined, { clusterId: (1n << 64n) - 1n, memberId: 0x8e9e05c52164694dn, revision: 1n << 40n, raftTerm: 2n }, {}];
    let n = 0;
    for (const header of headers)
      for (const count of [0n, 1n, 300n, 1n << 62n])
        for (const more of [false, true]) {
          const kvs = [];
          for (let i = 0; i < 12; i++) {
            n++;
            kvs.push(
              create(KeyValueSchema, {
                key: bytes(sizes[n % sizes.length]!, 0x61),
                value: bytes(sizes[(n * 7) % sizes.length]!, 0x80 | (n & 0x7f)),
                createRevision: numbers[n % numbers.length]!,
                modRevision: numbers[(n * 3) % numbers.length]!,
                version: numbers[(n * 5) % numbers.length]!,
                lease: leases[n % leases.length]!,
              }),
            );
          }
          assertSameAsProtobufEs(create(RangeResponseSchema, { header, kvs, more, count }));
        }
    assertSameAsProtobufEs(create(RangeResponseSchema));
  });

  it("takes key-values that are views into a larger buffer as they are", () => {
    const backing = bytes(1000, 7);
    const kv = create(KeyValueSchema, { key: backing.subarray(10, 18), value: backing.subarray(100, 356), modRevision: 4n });
    assertSameAsProtobufEs(create(RangeResponseSchema, { kvs: [kv, kv], count: 2n }));
  });

  it("leaves revisions beyond 2^53, negative ones and unknown fields to protobuf-es", () => {
    const big = create(KeyValueSchema, { key: bytes(3, 1), createRevision: 1n << 60n });
    assertSameAsProtobufEs(create(RangeResponseSchema, { kvs: [big], count: 1n }));
    const negative = create(KeyValueSchema, { key: bytes(3, 1), version: -5n });
    assertSameAsProtobufEs(create(RangeResponseSchema, { kvs: [negative], count: -1n }));
    // A key-value that went through a decoder keeps fields it did not know; they are written back.
    const withUnknown = fromBinary(KeyValueSchema, new Uint8Array([0x0a, 0x01, 0x61, 0xf8, 0x06, 0x01]));
    assert.notEqual(withUnknown.$unknown, undefined);
    assertSameAsProtobufEs(create(RangeResponseSchema, { kvs: [withUnknown] }));
  });
});

describe("encodeRangeResponseInSteps", () => {
  it("encodes a large response in steps to the same bytes, handed out once", async () => {
    const kvs = Array.from({ length: 250 }, (_, i) =>
      create(KeyValueSchema, {
        key: bytes(1 + (i % 20), 0x61 + (i % 26)),
        value: bytes(i, i & 0xff),
        modRevision: BigInt(i + 1),
        version: 1n,
      }),
    );
    const response = create(RangeResponseSchema, { header: { revision: 300n, clusterId: 1n << 63n }, kvs, more: true, count: 1000n });
    const expected = toBinary(RangeResponseSchema, response);
    await encodeRangeResponseInSteps(response, 32);
    assert.deepEqual(new Uint8Array(encodeRangeResponse(response)), expected);
    // Encoded again from the message once the stepped bytes were taken.
    assert.deepEqual(new Uint8Array(encodeRangeResponse(response)), expected);
    const small = create(RangeResponseSchema, { kvs: kvs.slice(0, 3), count: 3n });
    await encodeRangeResponseInSteps(small, 32);
    assert.deepEqual(new Uint8Array(encodeRangeResponse(small)), toBinary(RangeResponseSchema, small));
  });
});
