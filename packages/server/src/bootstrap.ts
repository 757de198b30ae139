import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { AuthStore, newTokenProvider } from "@etcd-ts/auth";
import { Lessor, minLeaseTTLFor, systemClock, type Clock } from "@etcd-ts/lease";
import type { Backend } from "@etcd-ts/storage";
import { DiskRaftStorage } from "@etcd-ts/wal";
import { AlarmStore } from "./apply/alarm.js";
import type { ServerConfig } from "./config.js";
import type { Logger } from "./log.js";
import { MemberState } from "./member-state.js";
import { Membership } from "./membership/membership.js";
import { receivedSnapshotDir, receivedSnapshotPath } from "./peer/snapshot-transfer.js";

/** A member as the peers of an existing cluster list it (IDs in hex). */
export interface ListedMember {
  readonly id: string;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** Asks the peers at `peerUrls` who is in their cluster; the first peer that answers gives the answer. */
export type FetchCluster = (peerUrls: readonly string[]) => Promise<{ clusterId: bigint; members: readonly ListedMember[] }>;

export interface BootstrapOptions {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly logger: Logger;
  /** Milliseconds per raft tick and ticks per election timeout: the shortest lease TTL follows from them. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly clock?: Clock;
  /** How a member joining an existing cluster (`--initial-cluster-state existing`) learns it. */
  readonly fetchCluster: FetchCluster;
}

/** A member's parts, opened from its data dir (or created for a new member), ready to be served. */
export interface BootstrappedMember {
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  /** The cluster's alarms (NOSPACE, CORRUPT) and the backend quota. */
  readonly alarms: AlarmStore;
  readonly state: MemberState;
  /** The raft log and its snapshots; a new cluster's starts at term 1. */
  readonly storage: DiskRaftStorage;
  /** True when the member restarted on a raft log it had; false when it bootstrapped or joined a cluster. */
  readonly restarted: boolean;
}

/**
 * Opens a member on its backend and data dir: leases, the MVCC store and auth from the backend; the
 * membership it holds, or a new cluster's, or the one an existing cluster's peers report; the raft log.
 * A database from the leader that raft had already taken when the process stopped is installed first,
 * so the log never applies on stale state. A data dir whose backend and raft log disagree is refused.
 */
export async function bootstrapMember(options: BootstrapOptions): Promise<BootstrappedMember> {
  const { config, backend, logger } = options;
  const raftDir = join(config.dataDir, "member", "raft");
  const lessor = new Lessor(backend, {
    clock: options.clock ?? systemClock,
    minLeaseTTL: minLeaseTTLFor(options.electionTicks, options.tickMs),
  });
  const store = MemberState.openStore(backend, lessor);
  const auth = await AuthStore.open(backend, {
    tokenProvider: newTokenProvider(config.authToken, { simpleTokenTtlMs: config.authTokenTtl * 1000 }),
    bcryptCost: config.bcryptCost,
  });
  const alarms = new AlarmStore(config.quotaBackendBytes);
  alarms.restore(backend);

  let membership = Membership.load(backend);
  const restarted = await DiskRaftStorage.exists(raftDir);
  if (!restarted) {
    if (membership !== undefined) {
      throw new Error(`${raftDir} is missing but the backend belongs to a member: the data dir is damaged; restore it from a snapshot`);
    }
    membership =
      config.initialClusterState === "new"
        ? await Membership.bootstrap(backend, config)
        : await joinExistingCluster(backend, config, options.fetchCluster);
  } else if (membership === undefined) {
    throw new Error(`the backend in ${config.dataDir} has no membership but a raft log exists: the data dir is damaged`);
  }
  const storage = await DiskRaftStorage.open(raftDir, {
    confState: membership.confState(),
    metadata: new TextEncoder().encode(
      JSON.stringify({ memberId: membership.localId.toString(16), clusterId: membership.clusterId.toString(16) }),
    ),
  });
  if (storage.isNew) {
    // etcd bootstraps a new cluster at term 1 (its initial membership entries), so the first election
    // makes term 2; start from the same place so terms read the same as etcd's.
    storage.setHardState({ term: 1, vote: 0n, commit: 0 });
    await storage.sync();
  }
  const stateDeps = { backend, lessor, auth, alarms, membership, logger };
  let state = new MemberState(stateDeps, store);
  try {
    const raftSnapshotIndex = storage.snapshot().metadata.index;
    if (raftSnapshotIndex > state.store.consistentIndex()) {
      // A snapshot from the leader was persisted in the raft log but the process stopped before the
      // received database became the backend: install it now, or the log would apply on stale state.
      const file = receivedSnapshotPath(config.dataDir, raftSnapshotIndex);
      if (!existsSync(file)) {
        throw new Error(
          `the raft log holds a snapshot at index ${raftSnapshotIndex} but the backend is at ${state.store.consistentIndex()} and ${file} is missing: the data dir is damaged`,
        );
      }
      state.close();
      ({ state } = await MemberState.installDatabase(file, stateDeps));
      await rm(file, { force: true });
      logger.info("installed a database snapshot received before a restart", { index: raftSnapshotIndex });
    }
    // Whatever else is left there raft never took (it declined an old index, or the process stopped
    // mid-transfer): each file may be as large as the whole database, and none can be installed now.
    await rm(receivedSnapshotDir(config.dataDir), { recursive: true, force: true });
  } catch (error) {
    // The process may go on (a test, an embedding program): leave the raft log unlocked.
    await storage.close();
    throw error;
  }
  return { membership, lessor, auth, alarms, state, storage, restarted };
}

/** A new member of an existing cluster learns the cluster from its peers (`--initial-cluster-state existing`). */
async function joinExistingCluster(backend: Backend, config: ServerConfig, fetchCluster: FetchCluster): Promise<Membership> {
  const own = new Set(config.initialAdvertisePeerUrls);
  const peers = [...config.initialCluster.entries()].filter(([name]) => name !== config.name).flatMap(([, urls]) => urls);
  const { clusterId, members } = await fetchCluster(peers);
  const self = members.find((m) => m.peerURLs.some((u) => own.has(u)));
  if (self === undefined) {
    throw new Error(`this member (peer URLs ${[...own].join(",")}) has not been added to the cluster; run 'etcdctl member add' first`);
  }
  return Membership.join(
    backend,
    clusterId,
    BigInt(`0x${self.id}`),
    members.map((m) => ({
      id: BigInt(`0x${m.id}`),
      name: m.name === "" && m.id === self.id ? config.name : m.name,
      peerUrls: m.peerURLs,
      clientUrls: m.clientURLs,
      isLearner: m.isLearner,
    })),
  );
}
