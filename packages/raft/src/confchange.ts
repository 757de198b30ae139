import { RaftError } from "./errors.js";
import { Progress } from "./tracker/progress.js";
import { cloneConfig, type TrackerConfig } from "./tracker/tracker.js";
import type { ConfChange, ConfState, NodeId } from "./types.js";
import { ConfChangeType } from "./types.js";

/**
 * Membership changes, one node at a time. A single change moves the voter set by at most one member, so
 * any majority of the old voters and any majority of the new voters intersect — the property joint
 * consensus buys for arbitrary changes (Raft dissertation §4.1). The raft core allows only one unapplied
 * change in the log at a time, which keeps that argument valid.
 *
 * Functions here are pure: they return a new configuration and progress map and leave the inputs alone
 * (Progress objects of unchanged members are shared).
 */
export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

export interface ChangerContext {
  config: TrackerConfig;
  progress: ReadonlyMap<NodeId, Progress>;
  maxInflight: number;
  /** The leader's last index: new members start probing from there. */
  lastIndex: number;
}

export function applySimpleChange(ctx: ChangerContext, cc: ConfChange): ChangeResult {
  const config = cloneConfig(ctx.config);
  const progress = new Map(ctx.progress);
  const id = cc.nodeId;
  if (id === 0n) {
    // etcd treats a zero node id as a no-op (used to force a config round-trip).
    return { config, progress };
  }
  switch (cc.type) {
    case ConfChangeType.AddNode: {
      config.learners.delete(id);
      config.voters.add(id);
      const pr = progress.get(id);
      if (pr) {
        // Promotion of a learner keeps its progress: it already has the log.
        const promoted = cloneProgress(pr);
        promoted.isLearner = false;
        progress.set(id, promoted);
      } else {
        progress.set(id, newProgress(ctx, false));
      }
      break;
    }
    case ConfChangeType.AddLearnerNode: {
      if (config.voters.has(id)) {
        config.voters.delete(id);
        if (config.voters.size === 0) throw new RaftError("InvalidConfChange", "removed all voters");
      }
      config.learners.add(id);
      const pr = progress.get(id);
      if (pr) {
        const demoted = cloneProgress(pr);
        demoted.isLearner = true;
        progress.set(id, demoted);
      } else {
        progress.set(id, newProgress(ctx, true));
      }
      break;
    }
    case ConfChangeType.RemoveNode: {
      config.voters.delete(id);
      config.learners.delete(id);
      progress.delete(id);
      if (ctx.config.voters.size > 0 && config.voters.size === 0) {
        throw new RaftError("InvalidConfChange", "removed all voters");
      }
      break;
    }
    case ConfChangeType.UpdateNode:
      // Only the application cares (the context carries new attributes).
      break;
    default:
      throw new RaftError("InvalidConfChange", `unknown conf change type ${String(cc.type)}`);
  }
  return { config, progress };
}

/** Builds the configuration described by a ConfState (on boot or when installing a snapshot). */
export function restoreConfState(cs: ConfState, maxInflight: number, lastIndex: number): ChangeResult {
  const ctx: ChangerContext = {
    config: { voters: new Set(), learners: new Set() },
    progress: new Map(),
    maxInflight,
    lastIndex,
  };
  let result: ChangeResult = { config: ctx.config, progress: new Map() };
  for (const id of cs.voters) {
    result = applySimpleChange(
      { ...ctx, config: result.config, progress: result.progress },
      {
        type: ConfChangeType.AddNode,
        nodeId: id,
        context: new Uint8Array(0),
      },
    );
  }
  for (const id of cs.learners) {
    if (result.config.voters.has(id)) throw new RaftError("InvalidConfChange", `${id} is both a voter and a learner`);
    result = applySimpleChange(
      { ...ctx, config: result.config, progress: result.progress },
      {
        type: ConfChangeType.AddLearnerNode,
        nodeId: id,
        context: new Uint8Array(0),
      },
    );
  }
  return result;
}

function newProgress(ctx: ChangerContext, isLearner: boolean): Progress {
  // A new member is optimistically treated as active, so a leader that just added it is not stepped down
  // by check-quorum before the member had a chance to answer.
  return new Progress(Math.max(ctx.lastIndex, 1), ctx.maxInflight, isLearner, true);
}

function cloneProgress(pr: Progress): Progress {
  const c = new Progress(pr.next, pr.inflights.size, pr.isLearner, pr.recentActive);
  c.match = pr.match;
  c.state = pr.state;
  c.pendingSnapshot = pr.pendingSnapshot;
  c.probeSent = pr.probeSent;
  return c;
}
