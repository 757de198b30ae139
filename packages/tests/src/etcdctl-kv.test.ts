import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { serverIds, transcript, type Step } from "./compare.js";
import { startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * etcdctl 3.4 against real etcd 3.4 and against etcd-ts, step by step: each step's normalized output
 * (stdout, stderr, exit code) must be identical. Both servers start fresh, so revisions match exactly.
 */

const txnInput = (compares: string, success: string, failure: string) => `${compares}\n\n${success}\n\n${failure}\n\n`;

const STEPS: Step[] = [
  // put
  { args: ["put", "k1", "v1"] },
  { args: ["put", "k1", "v2", "--prev-kv"] },
  { args: ["put", "k1", "v3", "--prev-kv", "-w", "json"] },
  { args: ["put", "k2", "hello", "-w", "fields"] },
  { args: ["put", "k3"], input: "from-stdin" },
  { args: ["put", "k1", "--ignore-value"] },
  { args: ["put", "missing", "--ignore-value"] },
  { args: ["put", "k1", "v4", "--ignore-lease"] },
  { args: ["put", "k1", "v5", "--lease=1234"] },
  { args: ["put", "", "v"] },
  { args: ["put", "a/1", "x"] },
  { args: ["put", "a/2", "yy"] },
  { args: ["put", "a/3", "z"] },
  { args: ["put", "b", "bee"] },
  // get with every flag
  { args: ["get", "k1"] },
  { args: ["get", "k1", "-w", "json"] },
  { args: ["get", "k1", "-w", "fields"] },
  { args: ["get", "nothing"] },
  { args: ["get", "nothing", "-w", "json"] },
  { args: ["get", "a/", "--prefix"] },
  { args: ["get", "a/", "--prefix", "--limit=2", "-w", "json"] },
  { args: ["get", "a/", "--from-key", "--keys-only"] },
  { args: ["get", "a/1", "a/3"] },
  { args: ["get", "a/", "--prefix", "--order=DESCEND"] },
  { args: ["get", "a/", "--prefix", "--sort-by=VALUE", "--order=DESCEND"] },
  { args: ["get", "a/", "--prefix", "--sort-by=MODIFY"] },
  { args: ["get", "", "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--keys-only"] },
  { args: ["get", "", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--limit=3"] },
  { args: ["get", "a/", "--prefix", "--count-only", "-w", "json"] },
  { args: ["get", "a/", "--prefix", "--print-value-only"] },
  { args: ["get", "k1", "--rev=2"] },
  { args: ["get", "k1", "--rev=2", "-w", "json"] },
  { args: ["get", "k1", "--consistency=s"] },
  { args: ["get", "", "--prefix", "--min-mod-revision=8", "--keys-only"] },
  { args: ["get", "", "--prefix", "--max-mod-revision=8", "--keys-only"] },
  { args: ["get", "", "--prefix", "--min-create-revision=9", "--max-create-revision=10", "--keys-only"] },
  { args: ["get", "k1", "--rev=1000"] },
  { args: ["get", "a/", "--prefix", "-w", "table"] },
  // txn (interactive input)
  { args: ["txn"], input: txnInput('value("k1") = "v5"', "put k1 txn-yes\nget k1", "put k1 txn-no") },
  { args: ["txn", "-w", "json"], input: txnInput('version("k1") > "1"\nmod("a/1") < "100"', "del a/1\nget a/ --prefix", "get b") },
  { args: ["txn"], input: txnInput('create("nope") = "0"', "put t1 1\nput t2 2", "put t1 no") },
  { args: ["txn"], input: txnInput('value("k1") != "txn-yes"', "put k1 x", "get k1\nget k2") },
  { args: ["txn", "-w", "json"], input: txnInput("", "put t3 3", "") },
  { args: ["txn"], input: txnInput('mod("k1") > "0"', "put dup 1\nput dup 2", "") },
  // del
  { args: ["del", "k3"] },
  { args: ["del", "k2", "--prev-kv"] },
  { args: ["del", "never"] },
  { args: ["del", "a/", "--prefix", "-w", "json"] },
  { args: ["del", "t", "--from-key", "--prev-kv"] },
  { args: ["put", "r1", "1"] },
  { args: ["put", "r2", "2"] },
  { args: ["del", "r1", "r3"] },
  { args: ["get", "", "--from-key", "-w", "json"] },
  // compaction
  { args: ["compaction", "5"] },
  { args: ["get", "k1", "--rev=4"] },
  { args: ["get", "k1", "--rev=5"] },
  { args: ["compaction", "3"] },
  { args: ["compaction", "100000"] },
  { args: ["compaction", "--physical", "12"] },
  { args: ["get", "", "--from-key", "--rev=12", "--keys-only"] },
  // cluster views
  { args: ["endpoint", "health"] },
  { args: ["endpoint", "status", "-w", "json"] },
  { args: ["member", "list"] },
  { args: ["member", "list", "-w", "json"] },
];

describe("etcdctl against etcd-ts gives what it gives against etcd 3.4", () => {
  let real: ServerProcess;
  let ours: ServerProcess;
  before(async () => {
    [real, ours] = await Promise.all([startRealEtcd(), startEtcdTs()]);
  });
  after(async () => {
    await Promise.all([real?.stop(), ours?.stop()]);
  });

  test("every step matches", () => {
    const realIds = serverIds(real);
    const ourIds = serverIds(ours);
    const mismatches: string[] = [];
    for (const step of STEPS) {
      const expected = transcript(real, step, realIds);
      const actual = transcript(ours, step, ourIds);
      if (expected !== actual) mismatches.push(`--- etcd\n${expected}\n+++ etcd-ts\n${actual}`);
    }
    assert.equal(mismatches.length, 0, `${mismatches.length} of ${STEPS.length} steps differ:\n\n${mismatches.join("\n\n")}`);
  });
});
