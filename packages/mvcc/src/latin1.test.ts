import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareBytes } from "@etcd-ts/storage";
import { latin1Bytes, latin1String } from "./latin1.js";

describe("latin1 keys", () => {
  it("order like the bytes and round-trip", () => {
    const samples = [[], [0], [0, 0], [1], [0x7f], [0x80], [0xe9, 0x41], [0xff], [0xff, 0], [0x41, 0x80, 0xff]].map((a) =>
      Uint8Array.from(a),
    );
    for (const x of samples) {
      assert.deepEqual(latin1Bytes(latin1String(x)), x);
      for (const y of samples) {
        const byBytes = Math.sign(compareBytes(x, y));
        const sx = latin1String(x);
        const sy = latin1String(y);
        assert.equal(sx < sy ? -1 : sx > sy ? 1 : 0, byBytes);
      }
    }
  });
});
