// One run of the randomized fault-injection test (see simulation.test.ts): a seed determines the cluster
// configuration and a long sequence of random actions; SimCluster checks the invariants after each.
import { SeededRand, type Rand } from "../rand.js";
import { SimCluster } from "./sim.js";
import { ConfChangeType, StateType } from "../types.js";
import type { NodeId } from "../types.js";

export const STEPS_PER_SEED = 1200;

function pick<T>(rand: Rand, xs: readonly T[]): T {
  return xs[rand.intn(xs.length)]!;
}

/** Runs one seed; throws SafetyViolation (with a trace) on a violated invariant. */
export function runSeed(seed: number): { applied: number; reads: number; leaders: number; fingerprint: string } {
  // Derive the configuration from the seed, so every seed explores a different corner.
  const cfgRand = new SeededRand(seed ^ 0x5bd1e995);
  const size = cfgRand.intn(2) === 0 ? 3 : 5;
  const voters: NodeId[] = Array.from({ length: size }, (_, i) => BigInt(i + 1));
  const spares: NodeId[] = [BigInt(size + 1), BigInt(size + 2)];
  const c = new SimCluster({
    seed,
    voters,
    spares,
    preVote: cfgRand.intn(2) === 0,
    checkQuorum: cfgRand.intn(2) === 0,
    maxSizePerMsg: pick(cfgRand, [64, 256, 1 << 20]),
    maxInflightMsgs: pick(cfgRand, [1, 2, 4, 256]),
    maxUncommittedEntriesSize: pick(cfgRand, [Infinity, Infinity, 40]),
    // Small values hand out committed entries a few at a time, so nodes snapshot between conf changes.
    maxCommittedSizePerReady: pick(cfgRand, [Infinity, Infinity, 100]),
    dropRate: pick(cfgRand, [0, 0.02, 0.1]),
    duplicateRate: pick(cfgRand, [0, 0.02, 0.1]),
  });
  const all = [...c.nodes.keys()];
  let reads = 0;
  const leaders = new Set<string>();
  for (let step = 0; step < STEPS_PER_SEED; step++) {
    const roll = c.rand.intn(1000);
    if (roll < 420) {
      c.deliverRandom();
    } else if (roll < 620) {
      c.tick(pick(c.rand, all));
    } else if (roll < 650) {
      // Time passes for everyone: long enough, under a partition, for elections to happen.
      c.tickAll(1 + c.rand.intn(6));
    } else if (roll < 800) {
      c.propose(pick(c.rand, all));
    } else if (roll < 830) {
      c.readIndex(pick(c.rand, all), `r${seed}-${reads++}`);
    } else if (roll < 845) {
      // Partition: a random split into two groups.
      const shuffled = [...all].sort(() => c.rand.next() - 0.5);
      const cutAt = 1 + c.rand.intn(all.length - 1);
      c.setPartition([shuffled.slice(0, cutAt), shuffled.slice(cutAt)]);
    } else if (roll < 852) {
      c.isolate(pick(c.rand, all));
    } else if (roll < 880) {
      c.heal();
    } else if (roll < 895) {
      c.crash(pick(c.rand, all));
    } else if (roll < 930) {
      c.restart(pick(c.rand, all));
    } else if (roll < 950) {
      c.compact(pick(c.rand, all));
    } else if (roll < 965) {
      // A membership change: add a spare as learner or voter, promote, or remove someone, keeping at
      // least two voters so the cluster can still make progress.
      const lead = c.leader();
      if (lead) {
        const cs = lead.confState;
        const target = pick(c.rand, all);
        const isVoter = cs.voters.includes(target);
        let type: ConfChangeType;
        if (isVoter) type = cs.voters.length > 2 && c.rand.intn(2) === 0 ? ConfChangeType.RemoveNode : ConfChangeType.AddLearnerNode;
        else
          type = cs.learners.includes(target)
            ? ConfChangeType.AddNode
            : pick(c.rand, [ConfChangeType.AddNode, ConfChangeType.AddLearnerNode]);
        if (!(type === ConfChangeType.AddLearnerNode && isVoter && cs.voters.length <= 2)) {
          c.proposeConfChange(lead.id, { type, nodeId: target, context: new Uint8Array() });
        }
      }
    } else if (roll < 975) {
      const lead = c.leader();
      if (lead) c.transferLeader(lead.id, pick(c.rand, all));
    } else {
      c.dropRandom();
    }
    const l = c.leader();
    if (l) leaders.add(`${l.raw!.raft.term}:${l.id}`);
  }

  // Liveness (sanity): heal everything, restart every node, stop injecting faults. A leader must emerge
  // and a new proposal must be applied by every member of its configuration.
  c.heal();
  c.dropRate = 0;
  c.duplicateRate = 0;
  for (const id of all) c.restart(id);
  let done = false;
  let target: { index: number; term: number } | undefined;
  for (let round = 0; round < 400 && !done; round++) {
    c.tickAll();
    c.deliverAll(5000);
    const lead = c.leader();
    if (!lead) continue;
    // Periodic snapshots, as a server takes them: a member added after the last snapshot can only be
    // caught up by a snapshot whose ConfState includes it (raft refuses to install one that does not).
    if (round % 20 === 19) c.compact(lead.id);
    const log = lead.raw!.raft.raftLog;
    // (Re-)propose when there is no target yet or the target entry was lost in a leader change.
    if (!target || (c.committedTerms.get(target.index) !== target.term && log.zeroTermOnError(target.index) !== target.term)) {
      if (c.propose(lead.id, `final-${seed}-${round}`)) target = { index: log.lastIndex(), term: log.lastTerm() };
      c.deliverAll(5000);
    }
    if (!target) continue;
    const members = [...lead.confState.voters, ...lead.confState.learners];
    done = c.committedTerms.get(target.index) === target.term && members.every((id) => c.node(id).appliedIndex >= target!.index);
  }
  if (!done) {
    const lp = c.leader()?.raw?.raft.trk;
    const prs = lp
      ? [...lp.progress].map(([id, pr]) => `${id}:${pr.toString()} active=${pr.recentActive} probeSent=${pr.probeSent}`).join("; ")
      : "";
    const state =
      prs +
      "\n" +
      [...c.nodes.values()]
        .map(
          (n) =>
            `${n.id}: ${n.raw ? `${StateType[n.raw.raft.state]} term ${n.raw.raft.term} lead ${n.raw.raft.lead} commit ${n.raw.raft.raftLog.committed} last ${n.raw.raft.raftLog.lastIndex()}` : "down"} applied ${n.appliedIndex} conf [${n.confState.voters.join(",")}] [${n.confState.learners.join(",")}]`,
        )
        .join("\n");
    c.fail(
      `liveness: no leader committed a new proposal on every member within 400 rounds after healing (target ${JSON.stringify(target)})\n${state}`,
    );
  }
  // Enough of the final state to tell two runs apart: per node its applied index, state digest and term.
  const fingerprint = [...c.nodes.values()].map((n) => `${n.id}:${n.appliedIndex}:${n.digest}:${n.raw?.raft.term}`).join(" ");
  return { applied: c.proposalsApplied, reads: c.readsServed, leaders: leaders.size, fingerprint };
}
