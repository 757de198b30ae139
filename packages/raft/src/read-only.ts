import type { Message, NodeId } from "./types.js";

/** A ReadIndex request waiting for a heartbeat quorum round to confirm the leader's commit index. */
interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Set<NodeId>;
}

/** The key of a request context: its bytes as a latin1 string (cheap, exact, usable as a Map key). */
export function contextKey(ctx: Uint8Array): string {
  let s = "";
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

/**
 * ReadIndex requests in the order they arrived (ReadOnlySafe). A heartbeat round carries the newest
 * request's context; an ack for it confirms every request queued before it too.
 */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a request to be confirmed at the given commit index. Duplicated contexts are ignored. */
  addRequest(index: number, m: Message): void {
    const key = contextKey(m.entries[0]!.data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat ack for the request with this context; returns the acks so far (or undefined). */
  recvAck(id: NodeId, context: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(contextKey(context));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeues the request with this context and every request before it, oldest first. */
  advance(context: Uint8Array): { req: Message; index: number }[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: { req: Message; index: number }[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      this.pending.delete(k);
      if (rs) out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  /** The context of the newest pending request, to piggyback on the next heartbeat. */
  lastPendingRequestContext(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)?.req.entries[0]!.data;
  }
}
