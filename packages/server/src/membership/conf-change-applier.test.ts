import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfChangeType } from "@etcd-ts/raft";
import { MemoryBackend } from "@etcd-ts/storage";
import { encodeMemberContext, decodeMemberContext } from "./member-context.js";
import {
  checkLearnerReady,
  isReadyToAddVotingMember,
  isReadyToPromoteMember,
  isReadyToRemoveVotingMember,
  validateConfChange,
} from "./conf-change-applier.js";
import { Membership, type Member } from "./membership.js";

const member = (id: bigint, name: string, url: string, isLearner = false): Member => ({
  id,
  name,
  peerUrls: [url],
  clientUrls: [],
  isLearner,
});

async function twoMembers(): Promise<Membership> {
  return Membership.join(new MemoryBackend(), 1n, 10n, [member(10n, "a", "http://a:1"), member(20n, "b", "http://b:1")]);
}

function change(type: ConfChangeType, nodeId: bigint, m?: Member, isPromote = false) {
  return { type, nodeId, context: m === undefined ? new Uint8Array(0) : encodeMemberContext({ member: m, requestId: 7n, isPromote }) };
}

test("conf changes are checked against the membership as etcd's ValidateConfigurationChange does", async () => {
  const ms = await twoMembers();
  assert.equal(
    validateConfChange(
      ms,
      change(ConfChangeType.AddNode, 30n, member(30n, "", "http://c:1")),
      decodeMemberContext(encodeMemberContext({ member: member(30n, "", "http://c:1"), requestId: 1n })),
    ),
    undefined,
  );
  const ctx = (m: Member, isPromote = false) => decodeMemberContext(encodeMemberContext({ member: m, requestId: 1n, isPromote }));
  assert.equal(validateConfChange(ms, change(ConfChangeType.AddNode, 20n), ctx(member(20n, "", "http://x:1")))?.kind, "memberExist");
  assert.equal(validateConfChange(ms, change(ConfChangeType.AddNode, 30n), ctx(member(30n, "", "http://b:1")))?.kind, "peerURLExist");
  assert.equal(validateConfChange(ms, change(ConfChangeType.RemoveNode, 99n), undefined)?.kind, "memberNotFound");
  assert.equal(validateConfChange(ms, change(ConfChangeType.UpdateNode, 99n), ctx(member(99n, "", "http://z:1")))?.kind, "memberNotFound");
  assert.equal(validateConfChange(ms, change(ConfChangeType.UpdateNode, 10n), ctx(member(10n, "", "http://b:1")))?.kind, "peerURLExist");
  assert.equal(
    validateConfChange(ms, change(ConfChangeType.UpdateNode, 10n), ctx(member(10n, "", "http://a:1"))),
    undefined,
    "its own URLs",
  );
  assert.equal(validateConfChange(ms, change(ConfChangeType.AddNode, 20n), ctx(member(20n, "", ""), true))?.kind, "memberNotLearner");
  assert.equal(validateConfChange(ms, change(ConfChangeType.AddNode, 99n), ctx(member(99n, "", ""), true))?.kind, "memberNotFound");
  ms.add(member(30n, "", "http://c:1", true));
  assert.equal(
    validateConfChange(ms, change(ConfChangeType.AddLearnerNode, 40n), ctx(member(40n, "", "http://d:1", true)))?.kind,
    "tooManyLearners",
  );
  assert.equal(
    validateConfChange(ms, change(ConfChangeType.AddNode, 30n), ctx(member(30n, "", ""), true)),
    undefined,
    "promote the learner",
  );
  ms.remove(20n);
  assert.equal(
    validateConfChange(ms, change(ConfChangeType.AddNode, 20n), ctx(member(20n, "", "http://q:1")))?.kind,
    "memberNotFound",
    "a removed ID never comes back",
  );
});

test("strict reconfiguration checks count started voters as etcd 3.4 does", () => {
  const started = (id: bigint) => member(id, `m${id}`, `http://m${id}:1`);
  const unstarted = (id: bigint) => member(id, "", `http://m${id}:1`);
  assert.equal(isReadyToAddVotingMember([started(1n)]), true, "a second member for a one-member cluster");
  assert.equal(isReadyToAddVotingMember([started(1n), unstarted(2n)]), false, "2 of 3 would not be started");
  assert.equal(isReadyToAddVotingMember([started(1n), started(2n), started(3n)]), true);
  assert.equal(isReadyToRemoveVotingMember([started(1n)], 1n), false, "the last voter");
  assert.equal(isReadyToRemoveVotingMember([started(1n)], 1234n), true, "an unknown ID is answered at apply");
  assert.equal(isReadyToRemoveVotingMember([started(1n), unstarted(2n), unstarted(3n)], 1n), false);
  assert.equal(isReadyToPromoteMember([started(1n), member(2n, "", "http://l:1", true)]), true);
});

test("a learner is promotable when its match is at least 90% of the leader's", () => {
  assert.equal(checkLearnerReady(undefined, 1n, 2n)?.kind, "notLeader");
  assert.equal(checkLearnerReady(new Map(), 1n, 2n)?.kind, "notLeader");
  const progress = (learner: number) =>
    new Map([
      [1n, { match: 100 }],
      [2n, { match: learner }],
    ]);
  assert.equal(checkLearnerReady(progress(89), 1n, 2n)?.kind, "learnerNotReady");
  assert.equal(checkLearnerReady(progress(90), 1n, 2n), undefined);
  assert.equal(checkLearnerReady(progress(0), 1n, 3n), undefined, "unknown IDs are answered at apply");
});
