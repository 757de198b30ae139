import { majorityCommittedIndex, majorityVoteResult, VoteResult } from "../quorum.js";
import type { ConfState, NodeId } from "../types.js";
import type { Progress } from "./progress.js";

/** The membership: who votes and who only learns. A node is in at most one of the two sets. */
export interface TrackerConfig {
  voters: Set<NodeId>;
  learners: Set<NodeId>;
}

export function cloneConfig(c: TrackerConfig): TrackerConfig {
  return { voters: new Set(c.voters), learners: new Set(c.learners) };
}

/** Node ids in ascending order: messages go out in a deterministic order. */
export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Tracks the configuration, every member's Progress, and the votes of the current election. */
export class ProgressTracker {
  config: TrackerConfig = { voters: new Set(), learners: new Set() };
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;
  /** Ids of progress in sorted order, refreshed whenever the membership changes. */
  private sorted: NodeId[] = [];

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  setConfig(config: TrackerConfig, progress: Map<NodeId, Progress>): void {
    this.config = config;
    this.progress = progress;
    this.sorted = sortedIds(progress.keys());
  }

  confState(): ConfState {
    return { voters: sortedIds(this.config.voters), learners: sortedIds(this.config.learners) };
  }

  isSingleton(): boolean {
    return this.config.voters.size === 1;
  }

  /** The largest index a quorum of voters has persisted. */
  committed(): number {
    return majorityCommittedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** Calls f for every member (voters and learners) in ascending id order. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    for (const id of this.sorted) {
      const pr = this.progress.get(id);
      if (pr) f(id, pr);
    }
  }

  /** Whether a quorum of voters was recently active (check-quorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    }
    return majorityVoteResult(this.config.voters, votes) === VoteResult.Won;
  }

  voterIds(): NodeId[] {
    return sortedIds(this.config.voters);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records a vote (only the first vote of each voter counts). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.config.voters) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: majorityVoteResult(this.config.voters, this.votes) };
  }
}
