/**
 * A linearizability checker for client histories of a key-value store seen as one register per key
 * (puts and gets), after Wing & Gong's search with Lowe's memoization (the algorithm porcupine and
 * Knossos use), written for our tests.
 *
 * A history is checked per key (P-compositionality: a history of independent registers is linearizable
 * iff each key's sub-history is), which keeps every search small. For one key, the search walks the
 * invocation/return events in time order and tries to linearize each operation somewhere between its
 * invocation and its return; a state (set of operations linearized so far, register value) already
 * explored is never explored again. The work is bounded: past `maxStepsPerKey` the answer for that key
 * is "unknown" rather than a wrong verdict.
 *
 * Operations whose outcome is unknown — a put that timed out or failed ambiguously — may have taken
 * effect at any time after their invocation, or never: they are given an infinite return time and the
 * search may leave them out. A get that failed returned nothing and changed nothing, so it is dropped.
 */

export type OperationOutcome =
  /** Acknowledged: a put that succeeded, a get that returned `value`. */
  | "ok"
  /** No answer, or an error that does not say whether the write was applied (timeout, unavailable). */
  | "ambiguous"
  /** Refused for certain before it took effect (e.g. a validation error): it never happened. */
  | "failed";

export interface KvOperation {
  /** Who issued it; a client issues one operation at a time (for reports only). */
  readonly client: number;
  readonly kind: "put" | "get";
  readonly key: string;
  /** For a put: the value written. For an acknowledged get: the value read, `null` when the key was absent. */
  readonly value: string | null;
  /** Milliseconds (or any monotonic unit) when the request was sent. */
  readonly invokedAt: number;
  /** When the answer came back (for ambiguous operations: when the client gave up; not used). */
  readonly returnedAt: number;
  readonly outcome: OperationOutcome;
}

export interface CheckOptions {
  /** Search steps per key before giving up with "unknown" (default 2,000,000). */
  readonly maxStepsPerKey?: number;
  /** The register's value before the history began, per key (default: absent, `null`). */
  readonly initialValue?: (key: string) => string | null;
}

export interface NonLinearizableWindow {
  readonly key: string;
  /**
   * The operation that could not be linearized: at the furthest point the search reached, this
   * operation's return came while no order of the operations pending with it explained its result.
   */
  readonly operation: KvOperation;
  /** The operations of this key whose intervals overlap the failing one's, in invocation order. */
  readonly concurrent: readonly KvOperation[];
  /** The register values possible just before that window (one per order the search reached it with). */
  readonly possibleValuesBefore: readonly (string | null)[];
  /** How many of this key's operations were linearized on the longest path found. */
  readonly linearizedCount: number;
}

export interface KeyResult {
  readonly key: string;
  readonly status: "ok" | "illegal" | "unknown";
  readonly operations: number;
  readonly steps: number;
  readonly window?: NonLinearizableWindow;
}

export interface CheckResult {
  /** "ok" only when every key is linearizable; "illegal" if any key is not; else "unknown" (work bound hit). */
  readonly status: "ok" | "illegal" | "unknown";
  readonly keys: readonly KeyResult[];
  /** The first key found not linearizable (by the failing operation's return time). */
  readonly firstIllegal?: NonLinearizableWindow;
}

/** Checks a whole history: split per key, each key checked on its own. */
export function checkLinearizable(history: readonly KvOperation[], options: CheckOptions = {}): CheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    if (op.outcome === "failed") continue;
    if (op.kind === "get" && op.outcome !== "ok") continue; // a get without an answer observed nothing
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const keys = [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key)!, options));
  const illegal = keys.filter((k) => k.status === "illegal").map((k) => k.window!);
  illegal.sort((a, b) => a.operation.returnedAt - b.operation.returnedAt);
  const status = illegal.length > 0 ? "illegal" : keys.some((k) => k.status === "unknown") ? "unknown" : "ok";
  return illegal.length > 0 ? { status, keys, firstIllegal: illegal[0]! } : { status, keys };
}

/** An invocation or a return in the doubly linked event list the search lifts operations out of. */
interface EventNode {
  readonly kind: "call" | "return";
  readonly op: number;
  readonly time: number;
  /** The call's return node (for a call), the return's call node (for a return). */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

function checkKey(key: string, ops: readonly KvOperation[], options: CheckOptions): KeyResult {
  const maxSteps = options.maxStepsPerKey ?? 2_000_000;
  const initial = options.initialValue?.(key) ?? null;
  const returnTime = (op: KvOperation) => (op.outcome === "ambiguous" ? Number.POSITIVE_INFINITY : op.returnedAt);

  // Events in time order; at equal times calls come first, so touching intervals count as concurrent
  // (the permissive reading: clocks on one machine cannot order them).
  const events: EventNode[] = [];
  ops.forEach((op, index) => {
    const call: EventNode = { kind: "call", op: index, time: op.invokedAt, match: null, prev: null, next: null };
    const ret: EventNode = { kind: "return", op: index, time: returnTime(op), match: call, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.kind === b.kind ? a.op - b.op : a.kind === "call" ? -1 : 1));
  const head: EventNode = { kind: "call", op: -1, time: Number.NEGATIVE_INFINITY, match: null, prev: null, next: null };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }

  const lift = (call: EventNode) => {
    call.prev!.next = call.next;
    if (call.next) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next) ret.next.prev = ret.prev;
  };
  const unlift = (call: EventNode) => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next) call.next.prev = call;
  };

  // The register's sequential specification.
  const step = (state: string | null, op: KvOperation): { ok: boolean; state: string | null } =>
    op.kind === "put" ? { ok: true, state: op.value } : { ok: op.value === state, state };

  // Memo of explored configurations: linearized set (a bit string) → register values seen with it.
  const linearized = new Uint8Array(ops.length);
  const seen = new Map<string, Set<string | null>>();
  const configKey = () => {
    let s = "";
    // 15 bits per UTF-16 code unit: a compact, collision-free string key.
    for (let i = 0; i < linearized.length; i += 15) {
      let word = 0;
      for (let j = i; j < Math.min(i + 15, linearized.length); j++) word = (word << 1) | linearized[j]!;
      s += String.fromCharCode(word + 0x20);
    }
    return s;
  };

  const stack: { call: EventNode; stateBefore: string | null }[] = [];
  let state = initial;
  let entry = head.next;
  let steps = 0;
  // The deepest point reached, for the report.
  let bestDepth = -1;
  let bestFailing: EventNode | null = null;
  let bestStates = new Set<string | null>();

  while (head.next !== null) {
    if (++steps > maxSteps) return { key, status: "unknown", operations: ops.length, steps };
    if (entry === null) throw new Error("linearizability: walked past the end of the event list");
    if (entry.kind === "call") {
      const op = ops[entry.op]!;
      const next = step(state, op);
      let advanced = false;
      if (next.ok) {
        linearized[entry.op] = 1;
        const k = configKey();
        let values = seen.get(k);
        if (values === undefined) seen.set(k, (values = new Set()));
        if (!values.has(next.state)) {
          values.add(next.state);
          stack.push({ call: entry, stateBefore: state });
          state = next.state;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          linearized[entry.op] = 0;
        }
      }
      if (!advanced) entry = entry.next;
    } else {
      // Every event left is the return of an operation that may never have happened: done.
      if (entry.time === Number.POSITIVE_INFINITY) return { key, status: "ok", operations: ops.length, steps };
      // This operation returned and could not be linearized before it: backtrack.
      if (stack.length > bestDepth) {
        bestDepth = stack.length;
        bestFailing = entry;
        bestStates = new Set([state]);
      } else if (stack.length === bestDepth && entry === bestFailing) {
        bestStates.add(state);
      }
      const top = stack.pop();
      if (top === undefined) {
        const failing = ops[bestFailing!.op]!;
        const concurrent = ops
          .filter((o) => o.invokedAt <= failing.returnedAt && returnTime(o) >= failing.invokedAt)
          .sort((a, b) => a.invokedAt - b.invokedAt);
        return {
          key,
          status: "illegal",
          operations: ops.length,
          steps,
          window: { key, operation: failing, concurrent, possibleValuesBefore: [...bestStates], linearizedCount: bestDepth },
        };
      }
      state = top.stateBefore;
      linearized[top.call.op] = 0;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { key, status: "ok", operations: ops.length, steps };
}

/** A readable account of a check's first failure (or its verdict), for assertion messages. */
export function describeResult(result: CheckResult): string {
  const checked = result.keys.reduce((n, k) => n + k.operations, 0);
  if (result.status === "ok") return `linearizable: ${checked} operations on ${result.keys.length} keys`;
  if (result.firstIllegal === undefined) {
    const unknown = result.keys.filter((k) => k.status === "unknown").map((k) => `${k.key} (${k.operations} ops)`);
    return `undecided: the work bound was reached for ${unknown.join(", ")}`;
  }
  const w = result.firstIllegal;
  const t0 = Math.min(...w.concurrent.map((o) => o.invokedAt));
  const show = (o: KvOperation) => {
    const ret = o.outcome === "ambiguous" ? "?" : (o.returnedAt - t0).toFixed(1);
    const what = o.kind === "put" ? `put(${JSON.stringify(o.value)})` : `get() → ${JSON.stringify(o.value)}`;
    return `  client ${o.client}: ${what} [${(o.invokedAt - t0).toFixed(1)}, ${ret}]${o.outcome === "ambiguous" ? " (ambiguous)" : ""}${o === w.operation ? "  ← cannot be linearized" : ""}`;
  };
  return [
    `not linearizable on key ${JSON.stringify(w.key)} after ${w.linearizedCount} of its operations were linearized;`,
    `register value(s) possible before the window: ${w.possibleValuesBefore.map((v) => JSON.stringify(v)).join(", ")}`,
    `operations overlapping the one that fails (times relative to the window's start):`,
    ...w.concurrent.map(show),
  ].join("\n");
}
