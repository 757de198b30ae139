import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyIndex, TreeIndex } from "./key-index.js";
import type { KeyAtRevision } from "./key-index.js";
import { RevisionSet } from "./revision.js";
import { isMvccError } from "./errors.js";

/**
 * The key etcd's key_index_test.go uses:
 *   {2.0, 4.0, 6.0(t)} {8.0, 10.0, 12.0(t)} {14.0, 14.1, 16.0(t)} {}
 */
function testKeyIndex(): KeyIndex {
  const ki = new KeyIndex("foo");
  ki.put(2, 0);
  ki.put(4, 0);
  ki.tombstone(6, 0);
  ki.put(8, 0);
  ki.put(10, 0);
  ki.tombstone(12, 0);
  ki.put(14, 0);
  ki.put(14, 1);
  ki.tombstone(16, 0);
  return ki;
}

function at(ki: KeyIndex, rev: number): string | undefined {
  const out: KeyAtRevision = { modMain: 0, modSub: 0, createdMain: 0, version: 0 };
  return ki.get(rev, out) ? `mod ${out.modMain}.${out.modSub} created ${out.createdMain} ver ${out.version}` : undefined;
}

function generations(ki: KeyIndex): string[] {
  return ki.generations.map((g) => {
    const revs: string[] = [];
    for (let i = 0; i < g.revs.length; i += 2) revs.push(`${g.revs[i]}.${g.revs[i + 1]}`);
    return revs.join(",");
  });
}

describe("KeyIndex.get (etcd's TestKeyIndexGet)", () => {
  it("finds the state at every revision and nothing where the key did not exist", () => {
    const ki = testKeyIndex();
    const expected: [number, string | undefined][] = [
      [17, undefined],
      [16, undefined],
      [15, "mod 14.1 created 14 ver 2"],
      [14, "mod 14.1 created 14 ver 2"],
      [13, undefined],
      [12, undefined],
      [11, "mod 10.0 created 8 ver 2"],
      [10, "mod 10.0 created 8 ver 2"],
      [9, "mod 8.0 created 8 ver 1"],
      [8, "mod 8.0 created 8 ver 1"],
      [7, undefined],
      [6, undefined],
      [5, "mod 4.0 created 2 ver 2"],
      [4, "mod 4.0 created 2 ver 2"],
      [3, "mod 2.0 created 2 ver 1"],
      [2, "mod 2.0 created 2 ver 1"],
      [1, undefined],
      [0, undefined],
    ];
    for (const [rev, want] of expected) assert.equal(at(ki, rev), want, `at ${rev}`);
  });

  it("refuses a tombstone on a deleted key", () => {
    const ki = testKeyIndex();
    assert.ok(!ki.isLive());
    assert.throws(
      () => ki.tombstone(17, 0),
      (e) => isMvccError(e, "Corrupt"),
    );
  });

  it("restores from a stored value: created and version come from it", () => {
    const ki = new KeyIndex("k");
    ki.restore(3, 9, 1, 4);
    ki.put(11, 0);
    assert.equal(at(ki, 10), "mod 9.1 created 3 ver 4");
    assert.equal(at(ki, 11), "mod 11.0 created 3 ver 5");
  });
});

describe("KeyIndex.compact (etcd's TestKeyIndexCompactAndKeep)", () => {
  const cases: [number, string[], string[]][] = [
    [1, ["2.0,4.0,6.0", "8.0,10.0,12.0", "14.0,14.1,16.0", ""], []],
    [2, ["2.0,4.0,6.0", "8.0,10.0,12.0", "14.0,14.1,16.0", ""], ["2.0"]],
    [3, ["2.0,4.0,6.0", "8.0,10.0,12.0", "14.0,14.1,16.0", ""], ["2.0"]],
    [4, ["4.0,6.0", "8.0,10.0,12.0", "14.0,14.1,16.0", ""], ["4.0"]],
    [5, ["4.0,6.0", "8.0,10.0,12.0", "14.0,14.1,16.0", ""], ["4.0"]],
    [6, ["8.0,10.0,12.0", "14.0,14.1,16.0", ""], []],
    [7, ["8.0,10.0,12.0", "14.0,14.1,16.0", ""], []],
    [8, ["8.0,10.0,12.0", "14.0,14.1,16.0", ""], ["8.0"]],
    [10, ["10.0,12.0", "14.0,14.1,16.0", ""], ["10.0"]],
    [12, ["14.0,14.1,16.0", ""], []],
    [14, ["14.1,16.0", ""], ["14.1"]],
    [15, ["14.1,16.0", ""], ["14.1"]],
    [16, [""], []],
  ];
  const keptOf = (keep: RevisionSet, candidates: string[]) =>
    candidates.filter((r) => {
      const [main, sub] = r.split(".").map(Number);
      return keep.has(main!, sub!);
    });
  const all = ["2.0", "4.0", "6.0", "8.0", "10.0", "12.0", "14.0", "14.1", "16.0"];

  for (const [rev, gens, kept] of cases) {
    it(`at ${rev}`, () => {
      const ki = testKeyIndex();
      const keep = new RevisionSet();
      ki.compact(rev, keep);
      assert.deepEqual(generations(ki), gens);
      assert.deepEqual(keptOf(keep, all), kept);
      assert.equal(keep.size, kept.length);
      assert.equal(ki.isEmpty(), rev === 16);
    });
  }

  it("compacts step by step to the same result", () => {
    const ki = testKeyIndex();
    for (const [rev, gens] of cases) {
      ki.compact(rev, new RevisionSet());
      assert.deepEqual(generations(ki), gens, `after ${rev}`);
    }
  });
});

describe("TreeIndex", () => {
  it("visits the keys that exist at a revision, in order", () => {
    const index = new TreeIndex();
    index.put(Buffer.from("b"), 2, 0);
    index.put(Buffer.from("a"), 3, 0);
    index.put(Buffer.from("c"), 4, 0);
    index.keyIndexForWrite(Buffer.from("b")).tombstone(5, 0);
    const visit = (rev: number, end?: string) => {
      const out: string[] = [];
      index.visitAt(Buffer.from("a"), end === undefined ? undefined : Buffer.from(end), rev, (ki, st) => {
        out.push(`${Buffer.from(ki.key).toString()}@${st.modMain}`);
      });
      return out;
    };
    assert.deepEqual(visit(4), ["a@3", "b@2", "c@4"]);
    assert.deepEqual(visit(5), ["a@3", "c@4"]);
    assert.deepEqual(visit(2), ["b@2"]);
    assert.deepEqual(visit(4, "c"), ["a@3", "b@2"]);
  });

  it("drops keys that compaction empties and copies keys it stores", () => {
    const index = new TreeIndex();
    const key = Buffer.from("x");
    index.put(key, 2, 0);
    key[0] = 0x79; // the caller reuses its buffer
    assert.ok(index.keyIndex(Buffer.from("x")) !== undefined);
    index.keyIndexForWrite(Buffer.from("x")).tombstone(3, 0);
    index.put(Buffer.from("z"), 4, 0);
    const keep = new RevisionSet();
    index.compact(3, keep);
    assert.equal(index.size, 1);
    assert.equal(keep.size, 0);
    assert.equal(index.keyIndex(Buffer.from("x")), undefined);
  });
});
