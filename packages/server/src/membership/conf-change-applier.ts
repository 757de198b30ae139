import { RpcError, isRpcError } from "@etcd-ts/api";
import type { MvccStore } from "@etcd-ts/mvcc";
import { ConfChangeType, type ConfChange, type ConfState } from "@etcd-ts/raft";
import type { ConfChangeApplier } from "../consensus/raft-log.js";
import type { Logger } from "../log.js";
import { decodeMemberContext, type MemberContext } from "./member-context.js";
import type { Member, Membership } from "./membership.js";

/** etcd 3.4 allows one learner at a time (`membership.maxLearners`). */
export const MAX_LEARNERS = 1;

/** The peer transport as membership changes need it: who to talk to. */
export interface PeerDirectory {
  addPeer(id: bigint, urls: readonly string[]): void;
  updatePeer(id: bigint, urls: readonly string[]): void;
  removePeer(id: bigint): void;
}

export interface MembershipChangeDeps {
  readonly membership: Membership;
  readonly peers: PeerDirectory;
  /** The store whose batch persists the membership with the entry's index (a getter: a snapshot install replaces it). */
  readonly store: () => MvccStore;
  readonly logger: Logger;
  /** The outcome of a change proposed here, by the request ID in its context. */
  readonly settle: (requestId: bigint, error: RpcError | undefined) => void;
  /** This member applied its own removal. */
  readonly onLocalRemoved: () => void;
}

/**
 * Applies committed conf changes to the membership, the peer transport and the backend. A change is
 * first checked against the membership as it is at its place in the log (etcd's
 * `ValidateConfigurationChange`): a rejected change still occupies its index, but raft applies a no-op
 * in its place and the proposer gets etcd's error.
 */
export class MembershipChangeApplier implements ConfChangeApplier {
  constructor(private readonly deps: MembershipChangeDeps) {}

  validateConfChange(change: ConfChange, index: number): Error | undefined {
    const context = contextOf(change);
    if (this.isReplay(index)) return replayVerdict(this.deps.membership, change, context);
    return validateConfChange(this.deps.membership, change, context);
  }

  /**
   * An entry at or below the consistent index was applied before a restart: the membership in the
   * backend already holds its effect. Raft still has to see it again (its configuration is rebuilt from
   * its snapshot plus the log), with the verdict it had then.
   */
  private isReplay(index: number): boolean {
    return index <= this.deps.store().consistentIndex();
  }

  async applyConfChange(change: ConfChange, confState: ConfState, index: number, rejection?: Error): Promise<void> {
    const { membership, peers, logger } = this.deps;
    if (this.isReplay(index)) return;
    const context = contextOf(change);
    if (rejection === undefined) {
      switch (change.type) {
        case ConfChangeType.AddNode:
        case ConfChangeType.AddLearnerNode: {
          const isLearner = change.type === ConfChangeType.AddLearnerNode;
          const existing = membership.get(change.nodeId);
          if (existing !== undefined) membership.add({ ...existing, isLearner });
          else if (context !== undefined) membership.add({ ...context.member, id: change.nodeId, isLearner });
          const member = membership.get(change.nodeId);
          if (member !== undefined) peers.addPeer(member.id, member.peerUrls);
          break;
        }
        case ConfChangeType.RemoveNode:
          membership.remove(change.nodeId);
          peers.removePeer(change.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          if (context !== undefined) {
            membership.update(change.nodeId, context.member.peerUrls);
            peers.updatePeer(change.nodeId, context.member.peerUrls);
          }
          break;
      }
      logger.info("applied a membership change", {
        type: context?.isPromote === true ? "PromoteLearner" : ConfChangeType[change.type],
        member: change.nodeId.toString(16),
        voters: confState.voters.length,
        learners: confState.learners.length,
      });
    } else {
      logger.info("rejected a membership change", {
        type: ConfChangeType[change.type],
        member: change.nodeId.toString(16),
        error: rejection.message,
      });
    }
    const store = this.deps.store();
    const { durable } = store.update((batch) => {
      if (rejection === undefined) membership.writeTo(batch.backend);
      if (index > store.consistentIndex()) batch.setConsistentIndex(index);
    });
    await durable;
    if (context !== undefined) this.deps.settle(context.requestId, isRpcError(rejection) ? rejection : undefined);
    if (rejection === undefined && change.type === ConfChangeType.RemoveNode && change.nodeId === membership.localId) {
      this.deps.onLocalRemoved();
    }
  }
}

function contextOf(change: ConfChange): MemberContext | undefined {
  if (change.context.byteLength === 0) return undefined;
  try {
    return decodeMemberContext(change.context);
  } catch {
    return undefined;
  }
}

/** The verdict a conf change had when first applied, read from the membership that holds its effect. */
function replayVerdict(membership: Membership, change: ConfChange, context: MemberContext | undefined): Error | undefined {
  const id = change.nodeId;
  const known = membership.has(id) || membership.wasRemoved(id);
  switch (change.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode:
      return known ? undefined : RpcError.of(context?.isPromote === true ? "memberNotFound" : "memberExist");
    case ConfChangeType.RemoveNode:
      return membership.wasRemoved(id) ? undefined : RpcError.of("memberNotFound");
    default:
      return known ? undefined : RpcError.of("memberNotFound");
  }
}

/** etcd's `RaftCluster.ValidateConfigurationChange`, against the membership at the change's log index. */
export function validateConfChange(membership: Membership, change: ConfChange, context: MemberContext | undefined): RpcError | undefined {
  const id = change.nodeId;
  if (membership.wasRemoved(id)) return RpcError.of("memberNotFound");
  const members = membership.list();
  switch (change.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode: {
      if (context?.isPromote === true) {
        const existing = membership.get(id);
        if (existing === undefined) return RpcError.of("memberNotFound");
        if (!existing.isLearner) return RpcError.of("memberNotLearner");
        return undefined;
      }
      if (membership.has(id)) return RpcError.of("memberExist");
      const taken = new Set(members.flatMap((m) => m.peerUrls));
      if ((context?.member.peerUrls ?? []).some((u) => taken.has(u))) return RpcError.of("peerURLExist");
      if (change.type === ConfChangeType.AddLearnerNode && members.filter((m) => m.isLearner).length + 1 > MAX_LEARNERS) {
        return RpcError.of("tooManyLearners");
      }
      return undefined;
    }
    case ConfChangeType.RemoveNode:
      return membership.has(id) ? undefined : RpcError.of("memberNotFound");
    case ConfChangeType.UpdateNode: {
      if (!membership.has(id)) return RpcError.of("memberNotFound");
      const taken = new Set(members.filter((m) => m.id !== id).flatMap((m) => m.peerUrls));
      if ((context?.member.peerUrls ?? []).some((u) => taken.has(u))) return RpcError.of("peerURLExist");
      return undefined;
    }
  }
  return undefined;
}

/** A member has started once it published its name (etcd's `Member.IsStarted`). */
function isStarted(member: Member): boolean {
  return member.name.length > 0;
}

function voters(members: readonly Member[]): Member[] {
  return members.filter((m) => !m.isLearner);
}

/** etcd's `IsReadyToAddVotingMember`: the started voters, counting the new one, still make a quorum. */
export function isReadyToAddVotingMember(members: readonly Member[]): boolean {
  let total = 1;
  let started = 0;
  for (const m of voters(members)) {
    if (isStarted(m)) started++;
    total++;
  }
  // Adding a second member to a one-member cluster (restoring a cluster from one member's data).
  if (started === 1 && total === 2) return true;
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's `IsReadyToRemoveVotingMember`: the started voters left after the removal make a quorum. */
export function isReadyToRemoveVotingMember(members: readonly Member[], id: bigint): boolean {
  let total = 0;
  let started = 0;
  for (const m of voters(members)) {
    if (m.id === id) continue;
    if (isStarted(m)) started++;
    total++;
  }
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's `IsReadyToPromoteMember`: counting the learner as a started voter, a quorum is started. */
export function isReadyToPromoteMember(members: readonly Member[]): boolean {
  let total = 1;
  let started = 1;
  for (const m of voters(members)) {
    if (isStarted(m)) started++;
    total++;
  }
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's `readyPercent`: a learner is in sync when its match index is at least 90% of the leader's. */
export const LEARNER_READY_PERCENT = 0.9;

/**
 * etcd's `isLearnerReady` on the leader's raft progress: `notLeader` when this member has no progress
 * (it is not the leader), `learnerNotReady` when the learner lags. An unknown ID passes (the apply-time
 * check answers it).
 */
export function checkLearnerReady(
  progress: ReadonlyMap<bigint, { match: number }> | undefined,
  leaderId: bigint,
  learnerId: bigint,
): RpcError | undefined {
  if (progress === undefined || progress.size === 0) return RpcError.of("notLeader");
  const learner = progress.get(learnerId);
  if (learner === undefined) return undefined;
  const leaderMatch = progress.get(leaderId)?.match ?? 0;
  if (learner.match < leaderMatch * LEARNER_READY_PERCENT) return RpcError.of("learnerNotReady");
  return undefined;
}
