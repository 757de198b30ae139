// Test helpers: build raft nodes on MemoryStorage and pass messages between them synchronously, with
// cuts, isolation and drops (in the spirit of etcd's `network` test helper). Not part of the public API.
import { isRaftError } from "../errors.js";
import { Raft, type Config } from "../raft.js";
import { SeededRand } from "../rand.js";
import { MemoryStorage } from "../storage.js";
import type { Entry, Message, NodeId } from "../types.js";
import { EMPTY_BYTES, EntryType, MessageType, newMessage } from "../types.js";

export interface TestRaftOptions extends Partial<Omit<Config, "id" | "storage">> {
  learners?: NodeId[];
  storage?: MemoryStorage;
}

/** A Raft over a MemoryStorage holding the given membership. */
export function newTestRaft(id: NodeId, voters: NodeId[], election = 10, heartbeat = 1, opts: TestRaftOptions = {}): Raft {
  const storage = opts.storage ?? new MemoryStorage({ confState: { voters, learners: opts.learners ?? [] } });
  return new Raft({
    id,
    electionTick: election,
    heartbeatTick: heartbeat,
    storage,
    rand: opts.rand ?? new SeededRand(Number(id) * 7919),
    maxInflightMsgs: 256,
    ...opts,
  });
}

/** Takes the messages the node queued. */
export function readMessages(r: Raft): Message[] {
  const msgs = r.msgs;
  r.msgs = [];
  return msgs;
}

export function ids(...n: number[]): NodeId[] {
  return n.map((x) => BigInt(x));
}

export function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: EntryType.Normal, data: data ? new TextEncoder().encode(data) : EMPTY_BYTES };
}

export function prop(to: NodeId, data = "somedata"): Message {
  return newMessage({ type: MessageType.Prop, from: to, to, entries: [entry(0, 0, data)] });
}

export function hup(id: NodeId): Message {
  return newMessage({ type: MessageType.Hup, from: id, to: id });
}

/** A storage pre-filled with entries of the given terms (index 1..n), as a node restarting with a log. */
export function storageWithTerms(voters: NodeId[], terms: number[]): MemoryStorage {
  const s = new MemoryStorage({ confState: { voters, learners: [] } });
  s.append(terms.map((t, i) => entry(i + 1, t)));
  return s;
}

function key(from: NodeId, to: NodeId): string {
  return `${from}->${to}`;
}

/**
 * Nodes connected by a perfect, synchronous network: send() delivers messages (and the messages they
 * cause) until there are none left, except those cut, dropped or ignored.
 */
export class Network {
  readonly peers = new Map<NodeId, Raft>();
  private dropRates = new Map<string, number>();
  private ignored = new Set<MessageType>();
  private readonly rand = new SeededRand(42);
  /** Called on every delivered message, for assertions. */
  msgHook: ((m: Message) => boolean) | undefined;

  constructor(nodes: Raft[]) {
    for (const n of nodes) this.peers.set(n.id, n);
  }

  static ofSize(n: number, opts: TestRaftOptions = {}): Network {
    const all = ids(...Array.from({ length: n }, (_, i) => i + 1));
    return new Network(all.map((id) => newTestRaft(id, all, 10, 1, opts)));
  }

  node(id: number | NodeId): Raft {
    const r = this.peers.get(BigInt(id));
    if (!r) throw new Error(`no node ${id}`);
    return r;
  }

  send(...msgs: Message[]): void {
    const queue = [...msgs];
    while (queue.length > 0) {
      const m = queue.shift()!;
      const p = this.peers.get(m.to);
      if (!p) continue;
      try {
        p.step(m);
      } catch (e) {
        if (!isRaftError(e, "ProposalDropped")) throw e;
      }
      queue.push(...this.filter(readMessages(p)));
    }
  }

  private filter(msgs: Message[]): Message[] {
    return msgs.filter((m) => {
      if (this.ignored.has(m.type)) return false;
      if (m.type === MessageType.Hup) throw new Error("unexpected MsgHup on the wire");
      const rate = this.dropRates.get(key(m.from, m.to)) ?? 0;
      if (rate > 0 && this.rand.next() < rate) return false;
      if (this.msgHook && !this.msgHook(m)) return false;
      return true;
    });
  }

  drop(from: NodeId, to: NodeId, rate: number): void {
    this.dropRates.set(key(from, to), rate);
  }

  cut(a: NodeId, b: NodeId): void {
    this.drop(a, b, 2);
    this.drop(b, a, 2);
  }

  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) {
      if (other !== id) this.cut(id, other);
    }
  }

  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.dropRates.clear();
    this.ignored.clear();
  }

  /** Ticks a node n times and delivers what it sends. */
  tick(id: NodeId, n = 1): void {
    const r = this.node(id);
    for (let i = 0; i < n; i++) {
      r.tick();
      this.send(...this.filter(readMessages(r)));
    }
  }
}
