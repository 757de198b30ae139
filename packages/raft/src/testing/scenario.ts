// Runs scenario scripts (packages/raft/testdata/*.txt) against a SimCluster. One command per line;
// `#` starts a comment. Messages are delivered in send order (FIFO) unless the script says otherwise,
// so a script is deterministic and reads like the story it tells. The language:
//
//   cluster 1 2 3 [spares 4 5] [prevote] [checkquorum] [inflight N] [maxsize BYTES]
//   campaign <id>              tick <id|all> [n]             deliver [n]        drop-all
//   run <n>                    (n rounds of: tick every node, deliver everything)
//   show                       (prints the nodes and the messages in flight: an aid for writing scripts)
//   propose <id> <data> [dropped]                           read <id> <ctx>
//   add <leader> <id> | add-learner <leader> <id> | remove <leader> <id>   (membership changes)
//   transfer <leader> <to>     compact <id>                   crash <id>         restart <id>
//   isolate <id>               partition 1 2 | 3              cut <a> <b>        heal
//   expect leader <id|none>                   expect state <id> leader|follower|candidate|precandidate
//   expect term <id> <n>       expect commit <id> <n>         expect applied-index <id> <n>
//   expect applied <id> <data...>             expect log <id> <term...>   (terms from the first index)
//   expect voters <id> <ids...>               expect learners <id> <ids...>
//   expect read <id> <ctx> <index>            expect no-read <id> <ctx>
//   expect snapshot <id> <index>              expect progress <leader> <id> probe|replicate|snapshot
//   expect messages <n>                        (in flight)
import { SimCluster } from "./sim.js";
import { ConfChangeType, MessageType, StateType } from "../types.js";
import type { NodeId } from "../types.js";

export class ScenarioError extends Error {
  constructor(file: string, line: number, text: string, why: string) {
    super(`${file}:${line}: ${text}\n  ${why}`);
    this.name = "ScenarioError";
  }
}

function id(s: string | undefined): NodeId {
  if (s === undefined || !/^\d+$/.test(s)) throw new Error(`expected a node id, got ${s}`);
  return BigInt(s);
}

function num(s: string | undefined): number {
  if (s === undefined || !/^\d+$/.test(s)) throw new Error(`expected a number, got ${s}`);
  return Number(s);
}

const STATES: Record<string, StateType> = {
  leader: StateType.Leader,
  follower: StateType.Follower,
  candidate: StateType.Candidate,
  precandidate: StateType.PreCandidate,
};

export function runScenario(file: string, text: string): { commands: number; expectations: number } {
  let c: SimCluster | undefined;
  let commands = 0;
  let expectations = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const [cmd, ...args] = line.split(/\s+/) as [string, ...string[]];
    const cluster = (): SimCluster => {
      if (!c) throw new Error("no cluster yet: start with `cluster`");
      return c;
    };
    const check = (ok: boolean, why: string): void => {
      expectations++;
      if (!ok) throw new ScenarioError(file, i + 1, line, why);
    };
    try {
      commands++;
      switch (cmd) {
        case "cluster": {
          const voters: NodeId[] = [];
          const spares: NodeId[] = [];
          let into = voters;
          let preVote = false;
          let checkQuorum = false;
          let maxInflightMsgs: number | undefined;
          let maxSizePerMsg: number | undefined;
          for (let a = 0; a < args.length; a++) {
            const w = args[a]!;
            if (w === "spares") into = spares;
            else if (w === "prevote") preVote = true;
            else if (w === "checkquorum") checkQuorum = true;
            else if (w === "inflight") maxInflightMsgs = num(args[++a]);
            else if (w === "maxsize") maxSizePerMsg = num(args[++a]);
            else into.push(id(w));
          }
          c = new SimCluster({ seed: 1, voters, spares, preVote, checkQuorum, maxInflightMsgs, maxSizePerMsg });
          c.processReadies();
          break;
        }
        case "campaign":
          cluster().campaign(id(args[0]));
          break;
        case "tick": {
          const n = args[1] === undefined ? 1 : num(args[1]);
          if (args[0] === "all") cluster().tickAll(n);
          else for (let k = 0; k < n; k++) cluster().tick(id(args[0]));
          break;
        }
        case "deliver":
          if (args[0] === undefined) cluster().deliverAll();
          else for (let k = 0, n = num(args[0]); k < n; k++) cluster().deliverAt(0);
          break;
        case "run":
          for (let k = 0, n = num(args[0]); k < n; k++) {
            cluster().tickAll();
            cluster().deliverAll();
          }
          break;
        case "show":
          console.log(describe(cluster()));
          break;
        case "drop-all":
          cluster().network = [];
          break;
        case "propose": {
          const ok = cluster().propose(id(args[0]), args[1]);
          if (args[2] === "dropped") check(!ok, "the proposal was accepted, expected it to be dropped");
          break;
        }
        case "read":
          cluster().readIndex(id(args[0]), args[1]!);
          break;
        case "add":
        case "add-learner":
        case "remove": {
          const type =
            cmd === "add" ? ConfChangeType.AddNode : cmd === "add-learner" ? ConfChangeType.AddLearnerNode : ConfChangeType.RemoveNode;
          const ok = cluster().proposeConfChange(id(args[0]), { type, nodeId: id(args[1]), context: new Uint8Array() });
          check(ok, "the membership change was dropped");
          break;
        }
        case "transfer":
          cluster().transferLeader(id(args[0]), id(args[1]));
          break;
        case "compact":
          cluster().compact(id(args[0]));
          break;
        case "crash":
          cluster().crash(id(args[0]));
          break;
        case "restart":
          cluster().restart(id(args[0]));
          break;
        case "isolate":
          cluster().isolate(id(args[0]));
          break;
        case "partition": {
          const groups: NodeId[][] = [[]];
          for (const w of args) {
            if (w === "|") groups.push([]);
            else groups[groups.length - 1]!.push(id(w));
          }
          cluster().setPartition(groups);
          break;
        }
        case "cut":
          cluster().cut(id(args[0]), id(args[1]));
          break;
        case "heal":
          cluster().heal();
          break;
        case "expect":
          runExpect(cluster(), args, check);
          break;
        default:
          throw new Error(`unknown command ${cmd}`);
      }
    } catch (e) {
      if (e instanceof ScenarioError) throw e;
      throw new ScenarioError(file, i + 1, line, e instanceof Error ? e.message : String(e));
    }
  }
  return { commands, expectations };
}

function describe(c: SimCluster): string {
  const lines: string[] = [];
  for (const n of c.nodes.values()) {
    const r = n.raw?.raft;
    lines.push(
      r
        ? `node ${n.id}: ${StateType[r.state]} term ${r.term} vote ${r.vote} commit ${r.raftLog.committed} log [${r.raftLog
            .allEntries()
            .map((e) => e.term)
            .join(" ")}] applied ${n.appliedIndex}`
        : `node ${n.id}: down`,
    );
  }
  c.network.forEach((f, i) => {
    const m = f.m;
    lines.push(
      `  msg ${i}: ${MessageType[m.type]} ${m.from}->${m.to} term ${m.term} index ${m.index} logTerm ${m.logTerm} entries ${m.entries.length} commit ${m.commit}${m.reject ? " reject" : ""}`,
    );
  });
  return lines.join("\n");
}

function runExpect(c: SimCluster, args: string[], check: (ok: boolean, why: string) => void): void {
  const [what, ...rest] = args;
  const node = (s: string | undefined) => c.node(id(s));
  const raft = (s: string | undefined) => {
    const r = node(s).raw?.raft;
    if (!r) throw new Error(`node ${s} is down`);
    return r;
  };
  switch (what) {
    case "leader": {
      const l = c.leader();
      const got = l ? String(l.id) : "none";
      check(got === rest[0], `leader is ${got}`);
      return;
    }
    case "state": {
      const r = raft(rest[0]);
      check(r.state === STATES[rest[1]!], `node ${rest[0]} is ${StateType[r.state]}`);
      return;
    }
    case "term":
      check(raft(rest[0]).term === num(rest[1]), `term is ${raft(rest[0]).term}`);
      return;
    case "commit":
      check(raft(rest[0]).raftLog.committed === num(rest[1]), `commit index is ${raft(rest[0]).raftLog.committed}`);
      return;
    case "applied-index":
      check(node(rest[0]).appliedIndex === num(rest[1]), `applied index is ${node(rest[0]).appliedIndex}`);
      return;
    case "applied": {
      const got = node(rest[0]).appliedData.join(" ");
      check(got === rest.slice(1).join(" "), `applied [${got}]`);
      return;
    }
    case "log": {
      const log = raft(rest[0]).raftLog;
      const got = log
        .allEntries()
        .map((e) => e.term)
        .join(" ");
      check(got === rest.slice(1).join(" "), `log terms from index ${log.firstIndex()} are [${got}]`);
      return;
    }
    case "voters": {
      const got = node(rest[0]).confState.voters.join(" ");
      check(got === rest.slice(1).join(" "), `voters are [${got}]`);
      return;
    }
    case "learners": {
      const got = node(rest[0]).confState.learners.join(" ");
      check(got === rest.slice(1).join(" "), `learners are [${got}]`);
      return;
    }
    case "read": {
      const got = node(rest[0]).reads.get(rest[1]!);
      check(got === num(rest[2]), got === undefined ? `no read state for ${rest[1]}` : `read index is ${got}`);
      return;
    }
    case "no-read": {
      const got = node(rest[0]).reads.get(rest[1]!);
      check(got === undefined, `read ${rest[1]} was answered with index ${got}`);
      return;
    }
    case "snapshot": {
      const got = node(rest[0]).storage.snapshot().metadata.index;
      check(got === num(rest[1]), `snapshot index is ${got}`);
      return;
    }
    case "progress": {
      const pr = raft(rest[0]).trk.progress.get(id(rest[1]));
      const got = pr ? ["probe", "replicate", "snapshot"][pr.state] : "none";
      check(got === rest[2], `progress of ${rest[1]} is ${pr ? pr.toString() : "none"}`);
      return;
    }
    case "messages":
      check(c.network.length === num(rest[0]), `${c.network.length} messages in flight`);
      return;
    default:
      throw new Error(`unknown expectation ${what}`);
  }
}
