import {
  CLUSTER_BUCKET,
  CLUSTER_ID_KEY,
  CLUSTER_VERSION_KEY,
  LOCAL_MEMBER_ID_KEY,
  MEMBERS_BUCKET,
  MEMBERS_REMOVED_BUCKET,
} from "@etcd-ts/schema";
import { compareBytes } from "@etcd-ts/storage";
import type { Backend, WriteTxn } from "@etcd-ts/storage";
import type { ServerConfig } from "../config.js";
import { ETCD_CLUSTER_VERSION } from "../config.js";
import { computeClusterId, computeMemberId, formatId } from "./identity.js";

/**
 * Cluster membership as this member knows it, kept in the backend's `members` and `cluster` buckets (the
 * buckets etcd uses), so that a restart comes back as the same member of the same cluster whatever the
 * `--initial-*` flags say then.
 */
export interface Member {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/**
 * Rows of the `cluster` bucket that belong to this member, not to the cluster (etcd keeps them in its
 * WAL metadata, not the backend): snapshots for clients and followers leave them out, and a member
 * that installs a snapshot keeps its own.
 */
export function isMemberLocalRow(bucket: string, key: Uint8Array): boolean {
  if (bucket !== CLUSTER_BUCKET) return false;
  return compareBytes(key, CLUSTER_ID_KEY) === 0 || compareBytes(key, LOCAL_MEMBER_ID_KEY) === 0;
}

interface StoredMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export class Membership {
  readonly clusterId: bigint;
  readonly localId: bigint;
  private readonly members: Map<bigint, Member>;
  private readonly removed = new Set<bigint>();

  private constructor(clusterId: bigint, localId: bigint, members: Map<bigint, Member>, removed: Iterable<bigint> = []) {
    this.clusterId = clusterId;
    this.localId = localId;
    this.members = members;
    for (const id of removed) this.removed.add(id);
  }

  /** The membership stored in `backend`, or undefined for a new data dir. */
  static load(backend: Backend): Membership | undefined {
    return backend.view((txn) => {
      if (!txn.buckets().includes(CLUSTER_BUCKET) || !txn.buckets().includes(MEMBERS_BUCKET)) return undefined;
      const cid = txn.get(CLUSTER_BUCKET, CLUSTER_ID_KEY);
      const lid = txn.get(CLUSTER_BUCKET, LOCAL_MEMBER_ID_KEY);
      if (cid === undefined || lid === undefined) return undefined;
      const members = new Map<bigint, Member>();
      const decoder = new TextDecoder();
      for (const { value } of txn.range(MEMBERS_BUCKET)) {
        const stored = JSON.parse(decoder.decode(value)) as StoredMember;
        const member: Member = {
          id: BigInt(`0x${stored.id}`),
          name: stored.name,
          peerUrls: stored.peerURLs,
          clientUrls: stored.clientURLs,
          isLearner: stored.isLearner,
        };
        members.set(member.id, member);
      }
      const removed: bigint[] = [];
      if (txn.buckets().includes(MEMBERS_REMOVED_BUCKET)) {
        for (const { key } of txn.range(MEMBERS_REMOVED_BUCKET)) removed.push(BigInt(`0x${decoder.decode(key)}`));
      }
      return new Membership(BigInt(`0x${decoder.decode(cid)}`), BigInt(`0x${decoder.decode(lid)}`), members, removed);
    });
  }

  /**
   * A new cluster from `--initial-cluster`: every member's ID from its peer URLs and the token (as etcd
   * computes them), the cluster ID from the member IDs. Written durably before the member serves.
   */
  static async bootstrap(backend: Backend, config: ServerConfig): Promise<Membership> {
    const local = config.initialCluster.get(config.name);
    if (local === undefined) {
      throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
    }
    const advertised = [...config.initialAdvertisePeerUrls].sort().join(",");
    if ([...local].sort().join(",") !== advertised) {
      throw new Error(
        `--initial-cluster has ${config.name}=${[...local].join(",")} but missing from --initial-advertise-peer-urls=${config.initialAdvertisePeerUrls.join(",")}`,
      );
    }
    const members = new Map<bigint, Member>();
    for (const [name, peerUrls] of config.initialCluster) {
      const id = computeMemberId(peerUrls, config.initialClusterToken);
      members.set(id, {
        id,
        name,
        peerUrls: [...peerUrls],
        clientUrls: name === config.name ? [...config.advertiseClientUrls] : [],
        isLearner: false,
      });
    }
    const localId = computeMemberId(local, config.initialClusterToken);
    const membership = new Membership(computeClusterId([...members.keys()]), localId, members);
    await membership.persist(backend);
    return membership;
  }

  list(): Member[] {
    return [...this.members.values()];
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  /** This member (a removed member keeps its last known record for Status). */
  get local(): Member {
    return this.members.get(this.localId) ?? this.lastLocal!;
  }

  private lastLocal: Member | undefined;

  /** A member joining an existing cluster: the cluster as its peers describe it. */
  static async join(backend: Backend, clusterId: bigint, localId: bigint, members: readonly Member[]): Promise<Membership> {
    const membership = new Membership(clusterId, localId, new Map(members.map((m) => [m.id, m])));
    await membership.persist(backend);
    return membership;
  }

  /**
   * After a snapshot from the leader replaced the backend: the members and removed members it holds;
   * this member's own rows (cluster and member ID), which snapshots leave out, written back.
   */
  async reloadAfterSnapshot(backend: Backend): Promise<void> {
    const decoder = new TextDecoder();
    const { members, removed } = backend.view((txn) => {
      const members: Member[] = [];
      const removed: bigint[] = [];
      if (txn.buckets().includes(MEMBERS_BUCKET)) {
        for (const { value } of txn.range(MEMBERS_BUCKET)) {
          const stored = JSON.parse(decoder.decode(value)) as StoredMember;
          members.push({
            id: BigInt(`0x${stored.id}`),
            name: stored.name,
            peerUrls: stored.peerURLs,
            clientUrls: stored.clientURLs,
            isLearner: stored.isLearner,
          });
        }
      }
      if (txn.buckets().includes(MEMBERS_REMOVED_BUCKET)) {
        for (const { key } of txn.range(MEMBERS_REMOVED_BUCKET)) removed.push(BigInt(`0x${decoder.decode(key)}`));
      }
      return { members, removed };
    });
    this.members.clear();
    for (const m of members) this.members.set(m.id, m);
    this.removed.clear();
    for (const id of removed) this.removed.add(id);
    await this.persist(backend);
  }

  has(id: bigint): boolean {
    return this.members.has(id);
  }

  /** Voters and learners, as raft's ConfState lists them. */
  confState(): { voters: bigint[]; learners: bigint[] } {
    const voters: bigint[] = [];
    const learners: bigint[] = [];
    for (const m of this.members.values()) (m.isLearner ? learners : voters).push(m.id);
    return { voters, learners };
  }

  /** Applies an added member (or a learner's promotion when it exists as a learner). */
  add(member: Member): void {
    const existing = this.members.get(member.id);
    if (existing !== undefined) {
      this.members.set(member.id, { ...existing, isLearner: member.isLearner && existing.isLearner });
      return;
    }
    this.members.set(member.id, member);
  }

  remove(id: bigint): void {
    if (id === this.localId) this.lastLocal = this.members.get(id);
    this.members.delete(id);
    this.removed.add(id);
  }

  wasRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  setAttributes(id: bigint, name: string, clientUrls: readonly string[]): void {
    const existing = this.members.get(id);
    if (existing !== undefined) this.members.set(id, { ...existing, name, clientUrls: [...clientUrls] });
  }

  update(id: bigint, peerUrls: readonly string[]): void {
    const existing = this.members.get(id);
    if (existing !== undefined) this.members.set(id, { ...existing, peerUrls: [...peerUrls] });
  }

  /** Writes the membership in `txn` (the apply batch of the entry that changed it). */
  writeTo(txn: WriteTxn): void {
    const encoder = new TextEncoder();
    txn.createBucket(MEMBERS_BUCKET);
    txn.createBucket(MEMBERS_REMOVED_BUCKET);
    for (const { key } of [...txn.range(MEMBERS_BUCKET)]) {
      const id = BigInt(`0x${new TextDecoder().decode(key)}`);
      if (!this.members.has(id)) txn.delete(MEMBERS_BUCKET, key);
    }
    for (const id of this.removed) txn.put(MEMBERS_REMOVED_BUCKET, encoder.encode(formatId(id)), encoder.encode("removed"));
    this.writeMembers(txn);
  }

  private async persist(backend: Backend): Promise<void> {
    await backend.update((txn) => this.writeMembers(txn));
  }

  private writeMembers(txn: WriteTxn): void {
    const encoder = new TextEncoder();
    {
      txn.createBucket(MEMBERS_BUCKET);
      txn.createBucket(CLUSTER_BUCKET);
      for (const m of this.members.values()) {
        const stored: StoredMember = {
          id: formatId(m.id),
          name: m.name,
          peerURLs: [...m.peerUrls],
          clientURLs: [...m.clientUrls],
          isLearner: m.isLearner,
        };
        txn.put(MEMBERS_BUCKET, encoder.encode(formatId(m.id)), encoder.encode(JSON.stringify(stored)));
      }
      txn.put(CLUSTER_BUCKET, CLUSTER_ID_KEY, encoder.encode(formatId(this.clusterId)));
      txn.put(CLUSTER_BUCKET, LOCAL_MEMBER_ID_KEY, encoder.encode(formatId(this.localId)));
      txn.put(CLUSTER_BUCKET, CLUSTER_VERSION_KEY, encoder.encode(ETCD_CLUSTER_VERSION));
    }
  }
}
