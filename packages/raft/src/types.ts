// The in-memory shapes the state machine works with. They are plain objects (no classes, no protobuf
// runtime) so that the hot path — appending entries and building MsgApp — allocates as little as possible;
// `codec.ts` converts them to and from the wire messages of proto/raft/raftpb.proto.
//
// Node ids are bigint: etcd member ids are random 64-bit numbers, which a JS number cannot hold exactly.
// Terms and indexes are numbers: they count up from 0 and stay far below 2^53.

/** A node id. 0n means "none" (no leader, no vote). */
export type NodeId = bigint;

/** The id that means "no node". */
export const None: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
  ConfChangeV2 = 2,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export enum MessageType {
  /** Local: start an election (tick or campaign()). */
  Hup = 0,
  /** Local: tell the leader to broadcast a heartbeat. */
  Beat = 1,
  /** A proposal: entries to append (local on the leader, forwarded by followers). */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  /** Local: the transport could not deliver to `from`. */
  Unreachable = 10,
  /** Local: the result of sending a snapshot to `from` (reject = failure). */
  SnapStatus = 11,
  /** Local: the leader checks that it heard from a quorum in the last election timeout. */
  CheckQuorum = 12,
  TransferLeader = 13,
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** Term of the entry at `index` (MsgApp), the candidate's last log term (votes), or the follower's term
   * at `rejectHint` (a rejected MsgAppResp). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot | undefined;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

/** One membership change. Applied one at a time (see README: why not joint consensus). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to raft; the server puts the member's attributes (peer URLs) here. */
  context: Uint8Array;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/** A confirmed linearizable read: once the state machine has applied `index`, reads tagged with
 * `requestCtx` may be served. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

export function emptyHardState(): HardState {
  return { term: 0, vote: None, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === None && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function emptySnapshot(): Snapshot {
  return { data: EMPTY_BYTES, metadata: { confState: { voters: [], learners: [] }, index: 0, term: 0 } };
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** A message with every field at its zero value, overridden by `fields`. */
export function newMessage(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    to: None,
    from: None,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

/** Local messages never leave the node; the transport must not send them and step() refuses them. */
export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.PreVoteResp
  );
}

export function voteResponseType(t: MessageType): MessageType {
  if (t === MessageType.Vote) return MessageType.VoteResp;
  if (t === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}

/** Total payload size of entries, the unit of maxSizePerMsg and friends. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}
