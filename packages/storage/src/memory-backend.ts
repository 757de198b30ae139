import { StorageError } from "./backend.js";
import type { Backend, Entry, OpenBackend, RangeOptions, ReadTxn, Snapshot, WriteTxn } from "./backend.js";
import { UpdateGate } from "./update-gate.js";
import type { EngineUpdate } from "./update-gate.js";
import { entryOf, treeDelete, treeGet, treePut, treeRange } from "./persistent-tree.js";
import type { TreeNode } from "./persistent-tree.js";

/**
 * Per-entry bookkeeping bytes counted by `size()`: a rough stand-in for a node and its two arrays, so
 * that the reported size grows with the number of keys and not only with their bytes.
 */
const ENTRY_OVERHEAD_BYTES = 64;

interface BucketState {
  readonly root: TreeNode | null;
  /** Sum over entries of key length + value length + ENTRY_OVERHEAD_BYTES. */
  readonly bytes: number;
}

/** One committed version of the whole store. Never mutated: writes build the next version. */
type StoreVersion = ReadonlyMap<string, BucketState>;

function bucketOf(version: StoreVersion, bucket: string): BucketState {
  const state = version.get(bucket);
  if (state === undefined) throw new StorageError("BucketNotFound", `bucket ${JSON.stringify(bucket)} not found`);
  return state;
}

function entryBytes(key: Uint8Array, value: Uint8Array): number {
  return key.length + value.length + ENTRY_OVERHEAD_BYTES;
}

/** Reads against one fixed version; `checkOpen` throws once the transaction or snapshot has ended. */
class VersionReader implements ReadTxn {
  constructor(
    protected version: StoreVersion,
    private readonly checkOpen: () => void,
  ) {}

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    return treeGet(bucketOf(this.version, bucket).root, key)?.value.slice();
  }

  range(bucket: string, options?: RangeOptions): IterableIterator<Entry> {
    this.checkOpen();
    const nodes = treeRange(bucketOf(this.version, bucket).root, options);
    function* entries(): Generator<Entry, void, undefined> {
      for (const node of nodes) yield entryOf(node);
    }
    return entries();
  }

  buckets(): string[] {
    this.checkOpen();
    return [...this.version.keys()].sort();
  }
}

/** Builds the next version in a private copy of the bucket map; the backend publishes it on success. */
class VersionWriter extends VersionReader implements WriteTxn {
  private readonly next: Map<string, BucketState>;
  private readonly checkWritable: () => void;

  constructor(base: StoreVersion, checkOpen: () => void) {
    const next = new Map(base);
    super(next, checkOpen);
    this.next = next;
    this.checkWritable = checkOpen;
  }

  result(): StoreVersion {
    return this.next;
  }

  createBucket(bucket: string): void {
    this.checkWritable();
    if (!this.next.has(bucket)) this.next.set(bucket, { root: null, bytes: 0 });
  }

  deleteBucket(bucket: string): void {
    this.checkWritable();
    this.next.delete(bucket);
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.checkWritable();
    const state = bucketOf(this.next, bucket);
    const old = treeGet(state.root, key);
    const bytes = state.bytes - (old === undefined ? 0 : entryBytes(old.key, old.value)) + entryBytes(key, value);
    // Copies (plain Uint8Arrays: `Buffer#slice` would share memory): the caller may reuse its arrays.
    this.next.set(bucket, { root: treePut(state.root, new Uint8Array(key), new Uint8Array(value)), bytes });
  }

  delete(bucket: string, key: Uint8Array): void {
    this.checkWritable();
    const state = bucketOf(this.next, bucket);
    const old = treeGet(state.root, key);
    if (old === undefined) return;
    this.next.set(bucket, { root: treeDelete(state.root, key), bytes: state.bytes - entryBytes(old.key, old.value) });
  }
}

/**
 * The in-memory engine, for tests and for `--storage-engine=memory`. Nothing survives `close()` or the
 * process. Each committed version is an immutable map of persistent trees, so `view` and `snapshot` just
 * hold a version (snapshot cost O(1), no copying) and a throwing `update` leaves the published version
 * untouched.
 */
export class MemoryBackend implements Backend {
  readonly engine = "memory";
  private current: StoreVersion = new Map();
  private closed = false;

  private checkBackendOpen = (): void => {
    if (this.closed) throw new StorageError("Closed", "memory storage backend is closed");
  };

  private readonly updates = new UpdateGate(this.checkBackendOpen);
  // A write builds the next version beside the published one and publishes it only when fn returned.
  private readonly engineUpdate: EngineUpdate<VersionWriter> = {
    begin: (checkOpen) => new VersionWriter(this.current, checkOpen),
    commit: (txn, apply) => {
      apply();
      this.current = txn.result();
    },
  };

  view<T>(fn: (txn: ReadTxn) => T): T {
    this.checkBackendOpen();
    let active = true;
    const txn = new VersionReader(this.current, () => {
      this.checkBackendOpen();
      if (!active) throw new StorageError("Closed", "read transaction used after view returned");
    });
    try {
      return fn(txn);
    } finally {
      active = false;
    }
  }

  update(fn: (txn: WriteTxn) => void): Promise<void> {
    return this.updates.update(fn, this.engineUpdate);
  }

  snapshot(): Snapshot {
    this.checkBackendOpen();
    let open = true;
    const reader = new VersionReader(this.current, () => {
      this.checkBackendOpen();
      if (!open) throw new StorageError("Closed", "snapshot is closed");
    });
    return Object.assign(reader, {
      close(): void {
        open = false;
      },
    });
  }

  size(): number {
    this.checkBackendOpen();
    let total = 0;
    for (const state of this.current.values()) total += state.bytes;
    return total;
  }

  sizeInUse(): number {
    // Nothing is ever freed-but-kept: every byte counted is live.
    return this.size();
  }

  defragment(): Promise<void> {
    try {
      this.checkBackendOpen();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Nothing to make durable: the memory engine keeps nothing across a restart. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    this.current = new Map();
    return Promise.resolve();
  }
}

/** Opens an empty in-memory store. */
export function openMemoryBackend(): MemoryBackend {
  return new MemoryBackend();
}

// Compile-time check: the memory engine can stand wherever an on-disk engine's opener is expected.
((_options) => openMemoryBackend()) satisfies OpenBackend;
