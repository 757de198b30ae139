import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { describe, it } from "node:test";
import { RangeRequest_SortOrder, RangeRequest_SortTarget } from "@etcd-ts/api";
import { goSort } from "./go-sort.js";
import { Harness, b, range, s } from "./test-harness.js";

describe("goSort (Go 1.19 sort.Sort)", () => {
  it("sorts", () => {
    for (const n of [0, 1, 5, 12, 13, 50, 51, 200, 1000]) {
      const data = Array.from({ length: n }, (_, i) => (i * 7919) % 101);
      goSort(data, (x, y) => x < y);
      assert.deepEqual(data, [...data].sort((x, y) => x - y));
    }
    const descending = Array.from({ length: 300 }, (_, i) => 300 - i);
    goSort(descending, (x, y) => x < y);
    assert.deepEqual(descending, Array.from({ length: 300 }, (_, i) => i + 1));
  });
});
