import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bytes } from "./testing/store-fixture.js";
import { FROM_KEY_RANGE_END, KeyIntervalSet, keyInterval } from "./range-permissions.js";

const set = (...perms: [string, string?][]) =>
  new KeyIntervalSet(
    perms.map(([k, e]) => keyInterval(bytes(k), e === undefined ? undefined : e === "\0" ? FROM_KEY_RANGE_END : bytes(e))),
  );
const has = (s: KeyIntervalSet, key: string, end?: string) =>
  s.containsRange(bytes(key), end === undefined ? undefined : end === "\0" ? FROM_KEY_RANGE_END : bytes(end));

describe("KeyIntervalSet", () => {
  it("a single-key permission covers that key only", () => {
    const s = set(["foo"]);
    assert.equal(has(s, "foo"), true);
    assert.equal(has(s, "fo"), false);
    assert.equal(has(s, "foo0"), false);
    assert.equal(has(s, "foo", "fop"), false, "a range starting at the key is more than the key");
    assert.equal(has(s, "foo", "foo\0"), true, "[foo, foo\\0) is exactly foo");
  });

  it("a range permission covers sub-ranges and keys inside, not beyond its end", () => {
    const s = set(["a", "c"]);
    assert.equal(has(s, "a"), true);
    assert.equal(has(s, "bzzz"), true);
    assert.equal(has(s, "c"), false);
    assert.equal(has(s, "a", "c"), true);
    assert.equal(has(s, "b", "c"), true);
    assert.equal(has(s, "a", "c\0"), false);
    assert.equal(has(s, "0", "b"), false);
  });

  it("a prefix permission ([p, p+1)) covers every key with the prefix", () => {
    const s = set(["dir/", "dir0"]);
    assert.equal(has(s, "dir/"), true);
    assert.equal(has(s, "dir/x/y"), true);
    assert.equal(has(s, "dir/", "dir0"), true);
    assert.equal(has(s, "dir0"), false);
    assert.equal(has(s, "dir"), false);
  });

  it("a from-key permission covers everything from its key on, a from-key request needs one", () => {
    const s = set(["m", "\0"]);
    assert.equal(has(s, "m"), true);
    assert.equal(has(s, "\xff\xff"), true);
    assert.equal(has(s, "m", "\0"), true);
    assert.equal(has(s, "z", "\0"), true);
    assert.equal(has(s, "a", "\0"), false);
    const bounded = set(["m", "zzzz"]);
    assert.equal(has(bounded, "m", "\0"), false, "[m, zzzz) does not reach the end of the keyspace");
  });

  it("the whole keyspace: empty key with \\0 range end", () => {
    const s = set(["", "\0"]);
    assert.equal(has(s, "", "\0"), true);
    assert.equal(has(s, "anything"), true);
    assert.equal(has(set(["a", "\0"]), "", "\0"), false);
  });

  it("merges overlapping and adjacent intervals so a request spanning them is covered", () => {
    const s = set(["a", "c"], ["c", "e"], ["d", "g"]);
    assert.deepEqual(s.intervals.length, 1);
    assert.equal(has(s, "a", "g"), true);
    assert.equal(has(s, "a", "g\0"), false);
    const gap = set(["a", "c"], ["d", "g"]);
    assert.equal(has(gap, "a", "g"), false, "a gap [c, d) is not covered");
    assert.equal(has(gap, "d", "f"), true);
    // A key permission right after a range joins it: [a, b) ∪ {b} = [a, b\0).
    const joined = set(["a", "b"], ["b"]);
    assert.equal(has(joined, "a", "b\0"), true);
  });

  it("an inverted or empty request range is treated as its start key", () => {
    const s = set(["k"]);
    assert.equal(has(s, "k", "a"), true);
    assert.equal(has(s, "k", "k"), true);
    assert.equal(has(set(["x"]), "k", "a"), false);
  });

  it("the empty set covers nothing", () => {
    const s = new KeyIntervalSet([]);
    assert.equal(s.isEmpty, true);
    assert.equal(has(s, ""), false);
    assert.equal(has(s, "", "\0"), false);
  });
});
