// Test support: a cluster of real members (EtcdServer, raft, the WAL, the apply path) in one process,
// over a SimulatedNetwork instead of sockets. Each member has its own memory backend and its own data
// dir (raft's WAL and received databases) in a temp dir; ticks are short, so elections take tens of
// milliseconds. Always stop the cluster (`after`/`t.after`): it removes the data dirs.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "@etcd-ts/api";
import { openMemoryBackend } from "@etcd-ts/storage";
import { defaultConfig, type ServerConfig } from "../config.js";
import { EtcdServer } from "../etcd-server.js";
import { ClusterService } from "../grpc/cluster-service.js";
import { silentLogger, type Logger } from "../log.js";
import { SimulatedNetwork, type SimulatedNetworkOptions } from "./simulated-network.js";

export interface InProcessClusterOptions {
  /** Members started together (3 by default). */
  readonly size?: number;
  /** Milliseconds per raft tick (10 by default). */
  readonly tickMs?: number;
  /** Ticks per election timeout (10 by default). */
  readonly electionTicks?: number;
  /** Applied entries between raft snapshots. */
  readonly snapshotCount?: number;
  /** Entries the log keeps behind a snapshot (etcd's SnapshotCatchUpEntries). */
  readonly snapshotCatchUpEntries?: number;
  /** How long a proposal may take (5 s by default). */
  readonly requestTimeoutMs?: number;
  readonly network?: SimulatedNetworkOptions;
  readonly logger?: Logger;
}

/** One member of the cluster, with the Cluster service a client would reach it through. */
export interface InProcessMember {
  readonly name: string;
  readonly peerUrl: string;
  readonly server: EtcdServer;
  readonly cluster: ClusterService;
  readonly dataDir: string;
  stopped: boolean;
}

const peerUrlOf = (name: string): string => `http://${name}.in-process:2380`;
const clientUrlOf = (name: string): string => `http://${name}.in-process:2379`;

export class InProcessCluster {
  readonly network: SimulatedNetwork;
  readonly members: InProcessMember[] = [];
  private readonly options: InProcessClusterOptions;
  /**
   * A member's timers (raft ticks, lease expiry, the network's delays) do not hold the process open: a
   * real member is kept alive by its listeners. In process there are none, so a test awaiting a commit
   * that only the next heartbeat brings (a dropped append, say) would find the event loop empty and be
   * cancelled. This timer holds the loop open until the cluster stops.
   */
  private readonly keepAlive = setInterval(() => undefined, 60_000);

  private constructor(options: InProcessClusterOptions) {
    this.options = options;
    this.network = new SimulatedNetwork(options.network);
  }

  /** Starts `size` members as a new cluster and waits until they agree on a leader. */
  static async start(options: InProcessClusterOptions = {}): Promise<InProcessCluster> {
    const cluster = new InProcessCluster(options);
    const names = Array.from({ length: options.size ?? 3 }, (_, i) => `m${i + 1}`);
    const initialCluster = new Map(names.map((name) => [name, [peerUrlOf(name)]]));
    try {
      const members = await Promise.all(names.map((name) => cluster.startMember(name, { initialCluster, initialClusterState: "new" })));
      cluster.members.push(...members);
      await Promise.all(members.map((m) => m.server.ready()));
      await cluster.waitForLeader();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  member(name: string): InProcessMember {
    const member = this.members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  /** The running members (all but those stopped). */
  running(): InProcessMember[] {
    return this.members.filter((m) => !m.stopped);
  }

  /**
   * Waits until every member of `among` (the running ones by default) names the same leader, itself one
   * of them, and returns it.
   */
  async waitForLeader(among: readonly InProcessMember[] = this.running(), timeoutMs = 10_000): Promise<InProcessMember> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ids = new Set(among.map((m) => m.server.leaderId()));
      const [id] = ids;
      const leader = ids.size === 1 ? among.find((m) => m.server.memberId === id && m.server.isLeader()) : undefined;
      if (leader !== undefined) return leader;
      if (Date.now() > deadline) {
        throw new Error(`no leader agreed on among ${among.map((m) => `${m.name} (sees ${m.server.leaderId().toString(16)})`).join(", ")}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Adds a member through the leader's Cluster service (as `etcdctl member add`), then starts it with
   * `--initial-cluster-state existing`: it learns the cluster from its peers and catches up.
   */
  async addMember(name: string, options: { learner: boolean }): Promise<InProcessMember> {
    const leader = await this.waitForLeader();
    const added = await leader.cluster.memberAdd({
      $typeName: "etcdserverpb.MemberAddRequest",
      peerURLs: [peerUrlOf(name)],
      isLearner: options.learner,
    });
    // The new member asks whichever peer answers first: wait until every one of them lists it.
    const id = added.member!.ID;
    await eventually(
      () => this.running().every((m) => m.server.membership.get(id) !== undefined),
      `every member applied the addition of ${name}`,
    );
    const initialCluster = new Map([...this.running().map((m): [string, string[]] => [m.name, [m.peerUrl]]), [name, [peerUrlOf(name)]]]);
    const member = await this.startMember(name, { initialCluster, initialClusterState: "existing" });
    this.members.push(member);
    return member;
  }

  /** Stops one member (its data dir is kept until the cluster stops). */
  async stopMember(member: InProcessMember): Promise<void> {
    member.stopped = true;
    await member.server.stop();
  }

  /** Stops every member and removes their data dirs. */
  async stop(): Promise<void> {
    clearInterval(this.keepAlive);
    await Promise.allSettled(this.members.map((m) => m.server.stop()));
    for (const m of this.members) {
      m.stopped = true;
      rmSync(m.dataDir, { recursive: true, force: true });
    }
  }

  private async startMember(name: string, cluster: Pick<ServerConfig, "initialCluster" | "initialClusterState">): Promise<InProcessMember> {
    const dataDir = mkdtempSync(join(tmpdir(), `etcd-ts-in-process-${name}-`));
    try {
      const server = await EtcdServer.start({
        config: {
          ...defaultConfig(name),
          dataDir,
          listenClientUrls: [clientUrlOf(name)],
          advertiseClientUrls: [clientUrlOf(name)],
          listenPeerUrls: [peerUrlOf(name)],
          initialAdvertisePeerUrls: [peerUrlOf(name)],
          ...cluster,
          bcryptCost: 4,
          ...(this.options.snapshotCount !== undefined ? { snapshotCount: this.options.snapshotCount } : {}),
        },
        backend: openMemoryBackend(),
        logger: this.options.logger ?? silentLogger,
        tickMs: this.options.tickMs ?? 10,
        electionTicks: this.options.electionTicks ?? 10,
        requestTimeoutMs: this.options.requestTimeoutMs ?? 5000,
        snapshotCatchUpEntries: this.options.snapshotCatchUpEntries,
        peerNetwork: this.network,
      });
      const logger = this.options.logger ?? silentLogger;
      return {
        name,
        peerUrl: peerUrlOf(name),
        server,
        cluster: new ClusterService(server, logger, this.options.requestTimeoutMs ?? 5000),
        dataDir,
        stopped: false,
      };
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Puts `key` = `value` through `member`; resolves with the revision it was written at. */
export async function put(member: InProcessMember, key: string, value: string): Promise<bigint> {
  const response = await member.server.put(create(PutRequestSchema, { key: encoder.encode(key), value: encoder.encode(value) }));
  return response.header!.revision;
}

/** The value of `key` as `member` reads it (linearizable unless `serializable`); undefined when absent. */
export async function get(member: InProcessMember, key: string, options: { serializable?: boolean } = {}): Promise<string | undefined> {
  const response = await member.server.range(
    create(RangeRequestSchema, { key: encoder.encode(key), serializable: options.serializable ?? false }),
  );
  const kv = response.kvs[0];
  return kv === undefined ? undefined : decoder.decode(kv.value);
}

/** Polls `predicate` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
