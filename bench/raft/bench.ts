// Throughput of a 3-member @etcd-ts/raft cluster in one process: no disk, no network. Messages are
// delivered in memory, entries "persisted" to MemoryStorage, committed entries counted as applied.
//
//   npx tsx bench/raft/bench.ts [--seconds=5] [--batch=1000] [--size=128] [--mode=single|batch]
//
// Each round the client proposes `batch` proposals of `size` bytes at the leader — one propose() call per
// proposal in single mode (the default), one proposeBatch() call in batch mode — then the loop runs
// persist → send → apply → advance on every member until the cluster is idle. Batching happens in raft:
// MsgApps carry up to maxSizePerMsg bytes of entries, and at most maxInflightMsgs are pipelined.
import { MemoryStorage, RawNode, StateType } from "../../packages/raft/src/index.js";
import type { Message, NodeId } from "../../packages/raft/src/index.js";

function arg(name: string, def: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
}

const seconds = Number(arg("seconds", "5"));
const batch = Number(arg("batch", "1000"));
const size = Number(arg("size", "128"));
const mode = arg("mode", "single");

const ids: NodeId[] = [1n, 2n, 3n];
const storages = new Map<NodeId, MemoryStorage>();
const nodes = new Map<NodeId, RawNode>();
for (const id of ids) {
  const storage = new MemoryStorage();
  storages.set(id, storage);
  const node = new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    checkQuorum: true,
    preVote: true,
  });
  node.bootstrap(ids);
  nodes.set(id, node);
}

let queue: Message[] = [];
let appliedOnLeader = 0;
let messagesDelivered = 0;
let leaderId: NodeId = 1n;

/** Runs every member's Ready loop and delivers messages until nothing is left to do. */
function drive(): void {
  for (;;) {
    let busy = false;
    for (const [id, node] of nodes) {
      if (!node.hasReady()) continue;
      busy = true;
      const rd = node.ready();
      const storage = storages.get(id)!;
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      for (const m of rd.messages) queue.push(m);
      if (id === leaderId) {
        for (const e of rd.committedEntries) if (e.data.length > 0) appliedOnLeader++;
      }
      node.advance();
    }
    if (queue.length > 0) {
      busy = true;
      const msgs = queue;
      queue = [];
      for (const m of msgs) {
        nodes.get(m.to)!.step(m);
        messagesDelivered++;
      }
    }
    if (!busy) return;
  }
}

// Elect node 1.
drive();
nodes.get(1n)!.campaign();
drive();
if (nodes.get(1n)!.status().softState.raftState !== StateType.Leader) throw new Error("node 1 did not become leader");
leaderId = 1n;
const leader = nodes.get(1n)!;

// Compact every member's log now and then, as a server would, so memory stays flat.
function compactAll(): void {
  for (const [id, storage] of storages) {
    const applied = nodes.get(id)!.status().applied;
    if (applied - storage.firstIndex() > 200_000) storage.compact(applied - 10_000);
  }
}

const payloads: Uint8Array[] = Array.from({ length: batch }, (_, i) => {
  const p = new Uint8Array(size);
  p[0] = i & 0xff;
  return p;
});

// Warm up the JIT, then measure.
function round(): void {
  if (mode === "batch") leader.proposeBatch(payloads);
  else for (let i = 0; i < batch; i++) leader.propose(payloads[i]!);
  drive();
}
for (let i = 0; i < 50; i++) round();
appliedOnLeader = 0;
messagesDelivered = 0;

const start = process.hrtime.bigint();
let rounds = 0;
const deadline = start + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < deadline) {
  round();
  rounds++;
  if (rounds % 100 === 0) compactAll();
}
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
const perSecond = appliedOnLeader / elapsed;
const followersCaughtUp = ids.every((id) => nodes.get(id)!.status().hardState.commit === leader.status().hardState.commit);
console.log(
  JSON.stringify({
    bench: "raft-3-members-in-process",
    mode,
    batch,
    payloadBytes: size,
    seconds: Number(elapsed.toFixed(2)),
    committedProposals: appliedOnLeader,
    proposalsPerSecond: Math.round(perSecond),
    messagesPerSecond: Math.round(messagesDelivered / elapsed),
    followersCaughtUp,
    node: process.version,
  }),
);
