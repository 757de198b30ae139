import { MvccError } from "./errors.js";
import { KeyTree } from "./key-tree.js";
import { latin1Bytes, latin1String } from "./latin1.js";
import { RevisionSet } from "./revision.js";

/**
 * The in-memory index from a user key to the revisions that changed it, as etcd's keyIndex keeps it.
 *
 * A key's life is a list of generations. A generation starts with the put that created the key and ends
 * with the tombstone that deleted it (the tombstone is the generation's last revision); the last
 * generation is open (empty right after a delete). Example: put@1.0, put@2.0, delete@3.0, put@4.0 gives
 *   {created 1.0, ver 3, revs [1.0, 2.0, 3.0(t)]}, {created 4.0, ver 1, revs [4.0]}.
 *
 * Revisions are stored flat as [main, sub, main, sub, …] to keep a key small in memory.
 */
/** A closed generation (see `KeyIndex` for the open one). */
export class Generation {
  constructor(
    /** Versions handed out in this generation: the version of its last revision. */
    public version: number,
    public createdMain: number,
    public createdSub: number,
    /** Interleaved main/sub pairs in increasing order; the last is the tombstone. */
    public revs: number[],
  ) {}
}

/** What a key looked like at a revision. Reused per call site only; do not hold. */
export interface KeyAtRevision {
  modMain: number;
  modSub: number;
  createdMain: number;
  version: number;
}

/** The fields a generation has; the open generation is kept in the `KeyIndex` itself. */
interface GenerationFields {
  version: number;
  createdMain: number;
  createdSub: number;
  revs: number[];
}

/** Index of the newest revision in `revs` with main <= atRev, or -1. */
function newestAtOrBelow(revs: readonly number[], atRev: number): number {
  for (let n = (revs.length >>> 1) - 1; n >= 0; n--) if (revs[2 * n]! <= atRev) return n;
  return -1;
}

/**
 * One key's generations. The open (last) generation lives in the object's own fields and the closed
 * ones, usually none, in `closed`: most keys never get deleted, and this keeps such a key to two
 * allocations (this object and its revisions array).
 */
export class KeyIndex implements GenerationFields {
  /** Closed generations, oldest first, each ending with its tombstone; null when there are none. */
  private closed: Generation[] | null = null;
  // The open generation.
  revs: number[] = [];
  version = 0;
  createdMain = 0;
  createdSub = 0;
  // The newest revision (a put or a tombstone): reads at the current revision, the common case, need
  // nothing else.
  private latestMain = 0;
  private latestSub = 0;

  /** `id` is the key as a latin1 string (see `latin1.ts`): the form the index stores and orders. */
  constructor(readonly id: string) {}

  /** The key's bytes (a fresh copy). */
  get key(): Uint8Array {
    return latin1Bytes(this.id);
  }

  /** The generations, oldest first, the open one last (for tests and debugging). */
  get generations(): readonly GenerationFields[] {
    return [...(this.closed ?? []), this];
  }

  private generationCount(): number {
    return this.closed === null ? 1 : this.closed.length + 1;
  }

  private generation(i: number): GenerationFields {
    const closed = this.closed;
    return closed !== null && i < closed.length ? closed[i]! : this;
  }

  /** Drops the `n` oldest generations (never the open one). */
  private dropGenerations(n: number): void {
    if (n === 0 || this.closed === null) return;
    this.closed.splice(0, n);
    if (this.closed.length === 0) this.closed = null;
  }

  /** True when the key has no revisions left. */
  isEmpty(): boolean {
    return this.closed === null && this.revs.length === 0;
  }

  /** Whether the key exists as of the newest revision (its open generation has revisions). */
  isLive(): boolean {
    return this.revs.length > 0;
  }

  put(main: number, sub: number): void {
    if (this.revs.length === 0) {
      this.createdMain = main;
      this.createdSub = sub;
      // A literal holds exactly its two numbers; a push onto an empty array reserves room for about
      // seventeen, ~120 bytes more for each of the many keys that are never written again.
      this.revs = [main, sub];
    } else {
      this.revs.push(main, sub);
    }
    this.version++;
    this.latestMain = main;
    this.latestSub = sub;
  }

  /** Seeds an empty index from a stored KeyValue (restore): created and version come from the value. */
  restore(createdMain: number, modMain: number, modSub: number, version: number): void {
    if (!this.isEmpty()) throw new MvccError("Corrupt", "mvcc: restore into a non-empty key index");
    this.revs = [modMain, modSub];
    this.createdMain = createdMain;
    this.createdSub = 0;
    this.version = version;
    this.latestMain = modMain;
    this.latestSub = modSub;
  }

  /** Ends the open generation with a tombstone at (main, sub). The key must be live. */
  tombstone(main: number, sub: number): void {
    if (!this.isLive()) throw new MvccError("Corrupt", "mvcc: tombstone on a key that does not exist");
    this.put(main, sub);
    (this.closed ??= []).push(new Generation(this.version, this.createdMain, this.createdSub, this.revs));
    this.revs = [];
    this.version = 0;
    this.createdMain = 0;
    this.createdSub = 0;
  }

  /**
   * The generation holding the key's state at `atRev`, or undefined when the key did not exist then
   * (before its creation, or deleted at or before `atRev`).
   */
  private generationAt(atRev: number): GenerationFields | undefined {
    const last = this.generationCount() - 1;
    for (let i = last; i >= 0; i--) {
      const g = this.generation(i);
      if (g.revs.length === 0) continue;
      // A closed generation ends with its tombstone: at or after it, the key did not exist.
      if (i !== last && g.revs[g.revs.length - 2]! <= atRev) return undefined;
      if (g.revs[0]! <= atRev) return g;
    }
    return undefined;
  }

  /** The key's state at `atRev` written into `out`; false when the key did not exist at `atRev`. */
  get(atRev: number, out: KeyAtRevision): boolean {
    if (atRev >= this.latestMain) {
      // At or after the newest change: the key is as it is now (gone if that change was a delete).
      if (this.revs.length === 0) return false;
      out.modMain = this.latestMain;
      out.modSub = this.latestSub;
      out.createdMain = this.createdMain;
      out.version = this.version;
      return true;
    }
    const g = this.generationAt(atRev);
    if (g === undefined) return false;
    const n = newestAtOrBelow(g.revs, atRev);
    if (n === -1) return false;
    out.modMain = g.revs[2 * n]!;
    out.modSub = g.revs[2 * n + 1]!;
    out.createdMain = g.createdMain;
    out.version = g.version - ((g.revs.length >>> 1) - n - 1);
    return true;
  }

  /** The generation a compaction at `atRev` works on: the first whose tombstone is above `atRev` (or the open one). */
  private compactionStart(atRev: number): number {
    const last = this.generationCount() - 1;
    let genIdx = 0;
    while (genIdx < last) {
      const g = this.generation(genIdx);
      if (g.revs[g.revs.length - 2]! > atRev) break;
      genIdx++;
    }
    return genIdx;
  }

  /**
   * Adds to `keep` the revision a compaction at `atRev` would keep, changing nothing (etcd's keep, for
   * HashKV).
   */
  keep(atRev: number, keep: RevisionSet): void {
    if (this.isEmpty()) return;
    const genIdx = this.compactionStart(atRev);
    const g = this.generation(genIdx);
    const n = newestAtOrBelow(g.revs, atRev);
    if (n === -1) return;
    // A tombstone closing its generation is not kept.
    if (n === (g.revs.length >>> 1) - 1 && genIdx !== this.generationCount() - 1) return;
    keep.add(g.revs[2 * n]!, g.revs[2 * n + 1]!);
  }

  /**
   * Drops the revisions a compaction at `atRev` makes unreachable, adding to `keep` the one revision
   * per key that must stay on disk: the newest at or below `atRev`, unless it is a tombstone.
   */
  compact(atRev: number, keep: RevisionSet): void {
    let genIdx = this.compactionStart(atRev);
    const g = this.generation(genIdx);
    const n = newestAtOrBelow(g.revs, atRev);
    if (n !== -1) keep.add(g.revs[2 * n]!, g.revs[2 * n + 1]!);
    if (g.revs.length > 0) {
      if (n > 0) g.revs.splice(0, 2 * n);
      // A closed generation reduced to its tombstone is gone too.
      if (g.revs.length === 2 && genIdx !== this.generationCount() - 1) {
        keep.delete(g.revs[0]!, g.revs[1]!);
        genIdx++;
      }
    }
    this.dropGenerations(genIdx);
  }
}

/** Scratch space for lookups; the index is used from one thread. */
const scratch: KeyAtRevision = { modMain: 0, modSub: 0, createdMain: 0, version: 0 };

/**
 * The collection of every key's `KeyIndex` (etcd's treeIndex): a hash map for the point lookups of
 * puts and gets, and a B+tree over the same entries for ordered range scans. Keys are latin1 strings.
 */
export class TreeIndex {
  private readonly byKey = new Map<string, KeyIndex>();
  private readonly ordered = new KeyTree<KeyIndex>();

  /** Number of keys with any revision left (live or not yet compacted away). */
  get size(): number {
    return this.byKey.size;
  }

  keyIndex(key: Uint8Array): KeyIndex | undefined {
    return this.byKey.get(latin1String(key));
  }

  /** The key's index, created when missing. */
  keyIndexForWrite(key: Uint8Array): KeyIndex {
    const id = latin1String(key);
    let ki = this.byKey.get(id);
    if (ki === undefined) {
      ki = new KeyIndex(id);
      this.byKey.set(id, ki);
      this.ordered.set(id, ki);
    }
    return ki;
  }

  /** Adds a revision to the key's index. */
  put(key: Uint8Array, main: number, sub: number): void {
    this.keyIndexForWrite(key).put(main, sub);
  }

  /**
   * Visits the keys that exist at `atRev` within `[key, end)` (end undefined: every key from `key`),
   * in key order, with the key's state at `atRev` (valid only during the call); stops when `visit`
   * returns false.
   */
  visitAt(
    key: Uint8Array,
    end: Uint8Array | undefined,
    atRev: number,
    // A visitor that returns nothing goes on.
    // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
    visit: (ki: KeyIndex, state: KeyAtRevision) => boolean | void,
  ): void {
    this.ordered.scan(latin1String(key), end === undefined ? undefined : latin1String(end), (_k, ki) => {
      if (!ki.get(atRev, scratch)) return true;
      return visit(ki, scratch);
    });
  }

  /**
   * Compacts every key's revisions at `atRev`, adding to `keep` the revisions that must stay on disk.
   * Keys left without revisions leave the index.
   */
  compact(atRev: number, keep: RevisionSet): void {
    const emptied: string[] = [];
    for (const [id, ki] of this.byKey) {
      ki.compact(atRev, keep);
      if (ki.isEmpty()) emptied.push(id);
    }
    for (const id of emptied) {
      this.byKey.delete(id);
      this.ordered.delete(id);
    }
  }

  /** The revisions a compaction at `atRev` would keep (etcd's treeIndex.Keep). */
  keep(atRev: number): RevisionSet {
    const keep = new RevisionSet();
    for (const ki of this.byKey.values()) ki.keep(atRev, keep);
    return keep;
  }

  /** Every key index in key order (tests). */
  *keyIndexes(): IterableIterator<KeyIndex> {
    for (const [, ki] of this.ordered.entries()) yield ki;
  }
}
