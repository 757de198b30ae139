import { Inflights } from "./inflights.js";

export enum ProgressState {
  /** Send one MsgApp per heartbeat interval until the follower's match index is found. */
  Probe = 0,
  /** The match is known: stream MsgApps optimistically, bounded by the inflights window. */
  Replicate = 1,
  /** A snapshot is on its way; send nothing until it is reported. */
  Snapshot = 2,
}

/** The leader's view of one follower (or of itself): what it has, what to send next, how to send it. */
export class Progress {
  /** Highest index known to be on the follower. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** Snapshot index in flight while in the Snapshot state. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (or a snapshot is worth sending to it). */
  recentActive: boolean;
  /** In Probe: a probe was sent and not yet answered, so the follower is paused until a heartbeat ack. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean, recentActive = false) {
    this.match = 0;
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
    this.recentActive = recentActive;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, continue after it: the follower has at least the snapshot's entries.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** An ack for index n arrived. Returns false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Replicate: entries up to n were just sent. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A MsgApp at index `rejected` was refused; `matchHint` is the follower's guess at the last index that
   * may match. Returns false for a stale rejection (then nothing changes).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // A rejection of something already matched is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe, only the rejection of the latest probe (next - 1) is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending to this follower is throttled right now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  toString(): string {
    return `${ProgressState[this.state]} match=${this.match} next=${this.next}${this.isLearner ? " learner" : ""}${this.pendingSnapshot ? ` pendingSnap=${this.pendingSnapshot}` : ""}`;
  }
}
