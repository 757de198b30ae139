import { rm } from "node:fs/promises";
import { SnapshotStatus, type Message } from "@etcd-ts/raft";
import { readConsistentIndex } from "@etcd-ts/schema";
import type { Backend, Snapshot as BackendSnapshot } from "@etcd-ts/storage";
import { clusterStateSnapshot, confStateOf } from "../maintenance/backend-snapshot.js";
import type { Logger } from "../log.js";
import { receivedSnapshotDir } from "./snapshot-transfer.js";

/** What shipping databases between members needs of the member. */
export interface SnapshotShippingHost {
  /** The data dir: received databases wait under it until raft installs them. */
  readonly dataDir: string;
  /** The backend whose consistent view a follower is sent. */
  readonly backend: Pick<Backend, "snapshot">;
  readonly logger: Logger;
  /** The term of the log entry at `index` (the shipped view's index). */
  termAt(index: number): number;
  /** A member's peer URLs; undefined for one that is not (or no longer) a member. */
  peerUrls(id: bigint): readonly string[] | undefined;
  /**
   * Carries `message` and the database in `view` to the member at `urls` (the peer network); closes the
   * view when done and resolves once the follower accepted it.
   */
  ship(urls: readonly string[], message: Message, view: BackendSnapshot): Promise<void>;
  /** Tells raft how shipping a database to `to` ended. */
  reportSnapshot(to: bigint, status: SnapshotStatus): void;
  /** Steps a received database's MsgSnap into raft, which decides whether to install it. */
  step(message: Message): void;
}

/**
 * Databases shipped between members, both ways. The leader sends a follower too far behind for the log
 * the whole backend, as etcd ships it: a consistent view, with raft snapshot metadata naming the index
 * that view holds (so the follower's log resumes right after it); one transfer per follower at a time,
 * and raft hears the outcome. A follower keeps each database it received, by the raft index it holds,
 * until raft installs it (`take`) or can no longer (`dropDeclined`).
 */
export class SnapshotShipping {
  /** Databases received from the leader, by the raft index they hold, until raft installs them. */
  private readonly received = new Map<number, string>();
  private readonly inFlight = new Set<bigint>();

  constructor(private readonly host: SnapshotShippingHost) {}

  /** Where received databases are written (see `receivedSnapshotPath`). */
  get receivedDir(): string {
    return receivedSnapshotDir(this.host.dataDir);
  }

  /** Ships the backend for raft's MsgSnap `m` to its follower (nothing if one is on its way there). */
  send(m: Message): void {
    const { host } = this;
    const urls = host.peerUrls(m.to);
    if (urls === undefined || this.inFlight.has(m.to)) {
      if (urls === undefined) host.reportSnapshot(m.to, SnapshotStatus.Failure);
      return;
    }
    let view;
    let message: Message;
    try {
      view = clusterStateSnapshot(host.backend.snapshot());
      const index = readConsistentIndex(view);
      message = {
        ...m,
        snapshot: {
          data: m.snapshot?.data ?? new Uint8Array(0),
          metadata: { index, term: host.termAt(index), confState: confStateOf(view) },
        },
      };
    } catch (error) {
      view?.close();
      host.logger.warn("cannot prepare a database snapshot for a follower", { to: m.to.toString(16), error: String(error) });
      host.reportSnapshot(m.to, SnapshotStatus.Failure);
      return;
    }
    this.inFlight.add(m.to);
    host.logger.info("sending a database snapshot to a follower that is behind the log", {
      to: m.to.toString(16),
      index: message.snapshot!.metadata.index,
    });
    host
      .ship(urls, message, view)
      .then(
        () => host.reportSnapshot(m.to, SnapshotStatus.Finish),
        (error: unknown) => {
          host.logger.warn("sending a database snapshot failed", { to: m.to.toString(16), error: String(error) });
          host.reportSnapshot(m.to, SnapshotStatus.Failure);
        },
      )
      .finally(() => this.inFlight.delete(m.to));
  }

  /** A database from the leader arrived (durable under the data dir): raft decides whether to install it. */
  async deliver(message: Message, file: string): Promise<void> {
    const index = message.snapshot!.metadata.index;
    const previous = this.received.get(index);
    if (previous !== undefined && previous !== file) await rm(previous, { force: true });
    this.received.set(index, file);
    this.host.step(message);
  }

  /** The database received for the snapshot raft installs at `index`; it is the caller's from now on. */
  take(index: number): string {
    const file = this.received.get(index);
    if (file === undefined) throw new Error(`raft installed a snapshot at index ${index} but no database was received for it`);
    this.received.delete(index);
    return file;
  }

  /**
   * Removes received databases raft can no longer install: raft only takes a snapshot above its commit
   * index, which is at or above the applied index, so one at or below `appliedIndex` was declined (it
   * arrived after the log had caught up) and would otherwise stay on disk.
   */
  dropDeclined(appliedIndex: number): void {
    for (const [index, file] of this.received) {
      if (index > appliedIndex) continue;
      this.received.delete(index);
      rm(file, { force: true }).catch((error: unknown) =>
        this.host.logger.warn("removing a declined database snapshot failed", { file, error: String(error) }),
      );
    }
  }
}
