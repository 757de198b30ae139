import { test } from "node:test";
import assert from "node:assert/strict";
import { computeClusterId, computeMemberId, formatId } from "./identity.js";
import { parseInitialCluster } from "../config.js";

// Real etcd 3.4.23 started with --initial-advertise-peer-urls http://localhost:2380 and the default token
// "etcd-cluster" reports member ID 8e9e05c52164694d and cluster ID cdf818194e3a8c32.
test("member and cluster IDs are derived as etcd derives them", () => {
  const member = computeMemberId(["http://localhost:2380"], "etcd-cluster");
  assert.equal(formatId(member), "8e9e05c52164694d");
  assert.equal(formatId(computeClusterId([member])), "cdf818194e3a8c32");
});

test("member ID does not depend on the order of peer URLs", () => {
  assert.equal(computeMemberId(["http://a:1", "http://b:2"], "t"), computeMemberId(["http://b:2", "http://a:1"], "t"));
  assert.notEqual(computeMemberId(["http://a:1"], "t"), computeMemberId(["http://a:1"], "u"));
});

test("--initial-cluster parses names with several URLs", () => {
  const c = parseInitialCluster("n1=http://a:1,n2=http://b:2,n1=http://c:3");
  assert.deepEqual(
    [...c.entries()],
    [
      ["n1", ["http://a:1", "http://c:3"]],
      ["n2", ["http://b:2"]],
    ],
  );
  assert.throws(() => parseInitialCluster("bogus"), /missing =/);
});
