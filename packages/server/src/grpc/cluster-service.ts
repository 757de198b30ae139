import { create } from "@bufbuild/protobuf";
import {
  MemberAddResponseSchema,
  MemberListResponseSchema,
  MemberPromoteResponseSchema,
  MemberRemoveResponseSchema,
  MemberSchema,
  MemberUpdateResponseSchema,
  RpcError,
  isRpcError,
  type Member as MemberMessage,
  type MemberAddRequest,
  type MemberAddResponse,
  type MemberListResponse,
  type MemberPromoteRequest,
  type MemberPromoteResponse,
  type MemberRemoveRequest,
  type MemberRemoveResponse,
  type MemberUpdateRequest,
  type MemberUpdateResponse,
  type ResponseHeader,
} from "@etcd-ts/api";
import { ConfChangeType, type ConfChange } from "@etcd-ts/raft";
import { computeMemberId } from "../membership/identity.js";
import type { PeerAnswerOf, PeerRequestHandler, PeerRequestKind, PeerRequestOf } from "../peer/peer-network.js";
import type { Logger } from "../log.js";
import { encodeMemberContext } from "../membership/member-context.js";
import {
  checkLearnerReady,
  isReadyToAddVotingMember,
  isReadyToPromoteMember,
  isReadyToRemoveVotingMember,
} from "../membership/conf-change-applier.js";
import type { Member, Membership } from "../membership/membership.js";

/** etcd's `HealthInterval`: a peer counts as connected once its stream has been up this long. */
export const HEALTH_INTERVAL_MS = 5000;

/** What the Cluster service needs of a member (EtcdServer provides it). */
export interface ClusterHost {
  readonly membership: Membership;
  readonly memberId: bigint;
  header(revision?: bigint): ResponseHeader;
  proposeConfChange(change: ConfChange, requestId: bigint): Promise<void>;
  newRequestId(): bigint;
  /** The leader's raft progress of every member; empty on a follower. */
  progress(): ReadonlyMap<bigint, { match: number }>;
  isLeader(): boolean;
  leaderId(): bigint;
  /** When the stream to a peer came up (ms since the epoch), 0 when it is down. */
  peerActiveSince(id: bigint): number;
  waitForLeader(timeoutMs?: number): Promise<boolean>;
  /** Answers requests of `kind` from other members (the leader's side of a forwarded promotion). */
  handlePeerRequest<K extends PeerRequestKind>(kind: K, handler: PeerRequestHandler<K>): void;
  /** Asks the member at one of `urls` over the peer network. */
  requestPeer<K extends PeerRequestKind>(
    urls: readonly string[],
    kind: K,
    request: PeerRequestOf<K>,
    timeoutMs: number,
  ): Promise<PeerAnswerOf<K>>;
}

/**
 * etcd's Cluster service: member add/remove/update/promote as raft conf changes, answered once applied
 * on this member with the membership after the change. The checks before proposing are etcd 3.4's
 * strict reconfiguration checks (`--strict-reconfig-check`, on by default); the checks against the
 * membership at the change's place in the log run when it is applied (`MembershipChangeApplier`).
 */
export class ClusterService {
  constructor(
    private readonly host: ClusterHost,
    private readonly logger: Logger,
    private readonly requestTimeoutMs = 7000,
  ) {
    // The leader's side of a forwarded promotion: etcd's errors reach the follower as they are.
    host.handlePeerRequest("promote", async ({ id }) => {
      await this.promoteHere(id);
      return {};
    });
  }

  /**
   * This member's conf changes go to raft one at a time: raft turns a conf change proposed while another
   * is still unapplied into an empty entry, and its proposer would wait for it until the request timeout.
   */
  private confChanges: Promise<unknown> = Promise.resolve();

  private proposeConfChange(change: ConfChange, requestId: bigint): Promise<void> {
    const run = this.confChanges.then(() => this.host.proposeConfChange(change, requestId));
    this.confChanges = run.catch(() => undefined);
    return run;
  }

  memberList(): MemberListResponse {
    return create(MemberListResponseSchema, { header: this.header(), members: this.members() });
  }

  async memberAdd(request: MemberAddRequest): Promise<MemberAddResponse> {
    const peerUrls = parsePeerUrls(request.peerURLs);
    const id = computeMemberId(peerUrls, "", Math.floor(Date.now() / 1000));
    const member: Member = { id, name: "", peerUrls, clientUrls: [], isLearner: request.isLearner };
    this.mayAddMember(member);
    const requestId = this.host.newRequestId();
    await this.proposeConfChange(
      {
        type: request.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
        nodeId: id,
        context: encodeMemberContext({ member, requestId }),
      },
      requestId,
    );
    return create(MemberAddResponseSchema, {
      header: this.header(),
      member: create(MemberSchema, { ID: id, peerURLs: [...peerUrls], isLearner: request.isLearner }),
      members: this.members(),
    });
  }

  async memberRemove(request: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    this.mayRemoveMember(request.ID);
    const requestId = this.host.newRequestId();
    const member: Member = { id: request.ID, name: "", peerUrls: [], clientUrls: [], isLearner: false };
    await this.proposeConfChange(
      { type: ConfChangeType.RemoveNode, nodeId: request.ID, context: encodeMemberContext({ member, requestId }) },
      requestId,
    );
    return create(MemberRemoveResponseSchema, { header: this.header(), members: this.members() });
  }

  async memberUpdate(request: MemberUpdateRequest): Promise<MemberUpdateResponse> {
    // etcd does not validate the URLs of an update (only MemberAdd parses them).
    const requestId = this.host.newRequestId();
    const member: Member = { id: request.ID, name: "", peerUrls: [...request.peerURLs], clientUrls: [], isLearner: false };
    await this.proposeConfChange(
      { type: ConfChangeType.UpdateNode, nodeId: request.ID, context: encodeMemberContext({ member, requestId }) },
      requestId,
    );
    return create(MemberUpdateResponseSchema, { header: this.header(), members: this.members() });
  }

  /** Only the leader knows whether a learner is in sync: a follower forwards the request to it, as etcd does. */
  async memberPromote(request: MemberPromoteRequest): Promise<MemberPromoteResponse> {
    try {
      await this.promoteHere(request.ID);
    } catch (error) {
      if (!isRpcError(error, "notLeader")) throw error;
      await this.forwardPromote(request.ID);
    }
    return create(MemberPromoteResponseSchema, { header: this.header(), members: this.members() });
  }

  private async promoteHere(id: bigint): Promise<void> {
    const rejection = checkLearnerReady(this.host.isLeader() ? this.host.progress() : undefined, this.host.memberId, id);
    if (rejection !== undefined) throw rejection;
    if (!isReadyToPromoteMember(this.host.membership.list())) {
      this.logger.warn("rejecting member promote request; not enough healthy members", { member: id.toString(16) });
      throw RpcError.of("memberNotEnoughStarted");
    }
    const existing = this.host.membership.get(id);
    const member: Member =
      existing !== undefined ? { ...existing, isLearner: false } : { id, name: "", peerUrls: [], clientUrls: [], isLearner: false };
    const requestId = this.host.newRequestId();
    await this.proposeConfChange(
      { type: ConfChangeType.AddNode, nodeId: id, context: encodeMemberContext({ member, requestId, isPromote: true }) },
      requestId,
    );
  }

  private async forwardPromote(id: bigint): Promise<void> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      if (!(await this.host.waitForLeader(Math.max(1, deadline - Date.now())))) throw RpcError.of("timeout");
      const leader = this.host.membership.get(this.host.leaderId());
      if (leader === undefined) throw RpcError.of("noLeader");
      try {
        await this.host.requestPeer(leader.peerUrls, "promote", { id }, Math.max(1, deadline - Date.now()));
        return;
      } catch (error) {
        if (isRpcError(error) && error.kind !== "leaderChanged") throw error;
        if (Date.now() >= deadline) throw RpcError.of("timeout");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** etcd's `mayAddMember`: a voter only when enough members are started, and never while a voter is unreachable. */
  private mayAddMember(member: Member): void {
    const members = this.host.membership.list();
    if (!member.isLearner && !isReadyToAddVotingMember(members)) {
      this.logger.warn("rejecting member add request; not enough healthy members", { member: member.id.toString(16) });
      throw RpcError.of("memberNotEnoughStarted");
    }
    if (!this.isConnectedToAllVotersSince(Date.now() - HEALTH_INTERVAL_MS)) {
      this.logger.warn("rejecting member add request; local member has not been connected to all peers, reconfigure breaks active quorum");
      throw RpcError.of("unhealthy");
    }
  }

  /** etcd's `mayRemoveMember`: learners freely; a voter only if the started and connected voters left keep a quorum. */
  private mayRemoveMember(id: bigint): void {
    const members = this.host.membership.list();
    if (this.host.membership.get(id)?.isLearner === true) return;
    if (!isReadyToRemoveVotingMember(members, id)) {
      this.logger.warn("rejecting member remove request; not enough healthy members", { member: id.toString(16) });
      throw RpcError.of("memberNotEnoughStarted");
    }
    // A member that is down is not part of the active quorum: removing it is safe.
    if (id !== this.host.memberId && this.host.peerActiveSince(id) === 0) return;
    const voters = members.filter((m) => !m.isLearner);
    const active = this.connectedVoters(Date.now() - HEALTH_INTERVAL_MS);
    if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) {
      this.logger.warn(
        "rejecting member remove request; local member has not been connected to all peers, reconfigure breaks active quorum",
      );
      throw RpcError.of("unhealthy");
    }
  }

  /** Voters (this member included) whose stream has been up since `since`. */
  private connectedVoters(since: number): number {
    let connected = 0;
    for (const m of this.host.membership.list()) {
      if (m.isLearner) continue;
      if (m.id === this.host.memberId) {
        connected++;
        continue;
      }
      const up = this.host.peerActiveSince(m.id);
      if (up !== 0 && up <= since) connected++;
    }
    return connected;
  }

  private isConnectedToAllVotersSince(since: number): boolean {
    return this.connectedVoters(since) === this.host.membership.list().filter((m) => !m.isLearner).length;
  }

  /** Cluster responses carry no revision in etcd: membership is not part of the keyspace. */
  private header(): ResponseHeader {
    return this.host.header(0n);
  }

  private members(): MemberMessage[] {
    return sortedMembers(this.host.membership.list()).map((m) =>
      create(MemberSchema, { ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner }),
    );
  }
}

/** etcd lists members by ID. */
export function sortedMembers(members: readonly Member[]): Member[] {
  return [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * etcd's `types.NewURLs` for MemberAdd: at least one URL; each http(s)/unix(s), with a host:port and no
 * path; trimmed and sorted. Anything else is `memberBadURLs`.
 */
export function parsePeerUrls(urls: readonly string[]): string[] {
  if (urls.length === 0) throw RpcError.of("memberBadURLs");
  const parsed: string[] = [];
  for (const raw of urls) {
    const text = raw.trim();
    const [, scheme, host, rest] = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(text) ?? [];
    // All three groups take part in every match (possibly empty), so one undefined means no match.
    if (scheme === undefined || host === undefined || rest === undefined) throw RpcError.of("memberBadURLs");
    if (!["http", "https", "unix", "unixs"].includes(scheme.toLowerCase())) throw RpcError.of("memberBadURLs");
    if (!hasHostPort(host.replace(/^[^@]*@/, ""))) throw RpcError.of("memberBadURLs");
    const path = rest.replace(/[?#].*$/, "");
    if (path !== "") throw RpcError.of("memberBadURLs");
    parsed.push(text);
  }
  return parsed.sort();
}

/** Go's `net.SplitHostPort` succeeds: `host:port` or `[v6]:port` (the port may be empty). */
function hasHostPort(hostPort: string): boolean {
  if (hostPort.startsWith("[")) return /^\[[^\]]*\]:[^:]*$/.test(hostPort);
  return /^[^:]*:[^:]*$/.test(hostPort);
}
