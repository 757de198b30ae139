// Majority quorums: the commit index a set of voters guarantees, and the outcome of a vote.
import type { NodeId } from "./types.js";

export enum VoteResult {
  /** Not decided yet: some votes are missing. */
  Pending = 1,
  Lost = 2,
  Won = 3,
}

/**
 * The largest index that a majority of `voters` has acknowledged, where `acked(id)` is the highest index
 * voter id is known to hold (undefined if unknown, counted as 0). An empty configuration commits
 * everything (Infinity), so that a joint half with no voters never holds the other back.
 */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, acked: (id: NodeId) => number | undefined): number {
  const n = voters.size;
  if (n === 0) return Infinity;
  // Small clusters dominate: avoid allocating for n <= 7 by using a fixed scratch array.
  const srt = n <= SCRATCH.length ? SCRATCH : new Array<number>(n);
  let i = 0;
  for (const id of voters) srt[i++] = acked(id) ?? 0;
  // Insertion sort, descending, of the first n slots.
  for (let a = 1; a < n; a++) {
    const v = srt[a]!;
    let b = a - 1;
    while (b >= 0 && srt[b]! < v) {
      srt[b + 1] = srt[b]!;
      b--;
    }
    srt[b + 1] = v;
  }
  // With descending order, the (n/2)th element (0-based floor(n/2)) is held by a majority.
  return srt[Math.floor(n / 2)]!;
}
const SCRATCH: number[] = [0, 0, 0, 0, 0, 0, 0];

/** The result of an election among `voters` given the votes so far (true = granted). */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}
