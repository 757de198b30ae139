// Randomized fault-injection test: many seeds of mixed faults (drop, duplicate, reorder/delay, partition,
// isolate, crash and restart), proposals, reads, compactions, membership changes and leader transfers.
// SimCluster checks after every step: at most one leader per term, log matching, leader completeness,
// identical applied entries at every index, and that ReadIndex answers are linearizable.
//
//   RAFT_SEEDS=5000 npm test -w @etcd-ts/raft     # run many seeds
//   RAFT_SEED=1234 npm test -w @etcd-ts/raft      # reproduce one seed
import assert from "node:assert/strict";
import { test } from "node:test";
import { runSeed, STEPS_PER_SEED } from "./testing/chaos.js";
import { SafetyViolation } from "./testing/sim.js";

const DEFAULT_SEEDS = 1000;

const only = process.env.RAFT_SEED;
const seeds =
  only !== undefined ? [Number(only)] : Array.from({ length: Number(process.env.RAFT_SEEDS ?? DEFAULT_SEEDS) }, (_, i) => i + 1);

test(`randomized faults keep Raft's safety properties (${seeds.length} seeds x ${STEPS_PER_SEED} steps)`, () => {
  let applied = 0;
  let reads = 0;
  let leaders = 0;
  for (const seed of seeds) {
    try {
      const r = runSeed(seed);
      applied += r.applied;
      reads += r.reads;
      leaders += r.leaders;
    } catch (e) {
      const how = `RAFT_SEED=${seed} npm test -w @etcd-ts/raft`;
      if (e instanceof SafetyViolation) assert.fail(`seed ${seed} failed: ${e.message}\nreproduce with: ${how}`);
      throw new Error(`seed ${seed} crashed; reproduce with: ${how}`, { cause: e });
    }
  }
  // The runs must actually do something, or the checks are vacuous.
  assert.ok(applied > seeds.length * 10, `only ${applied} proposals applied`);
  assert.ok(leaders >= seeds.length, `only ${leaders} leaders`);
  console.log(`simulation: ${seeds.length} seeds, ${applied} entries applied, ${reads} reads served, ${leaders} leader terms`);
});
