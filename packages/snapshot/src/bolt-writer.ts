import { createHash } from "node:crypto";
import { once } from "node:events";
import { open, rename, rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import { compareBytes } from "@etcd-ts/storage";
import type { ReadTxn } from "@etcd-ts/storage";
import {
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  FREELIST_PAGE_FLAG,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  PAGE_HEADER_SIZE,
  branchElementBytes,
  encodeBucketHeader,
  encodeInlineBucket,
  encodeMetaPage,
  leafElementBytes,
  writeBranchPage,
  writeLeafPage,
  writePageHeader,
} from "./bolt-format.js";
import type { BoltMeta, BranchElement, LeafElement } from "./bolt-format.js";
import { SnapshotError } from "./errors.js";

/**
 * Writes a consistent read view of a `Backend` as a bbolt database: etcd's snapshot file format.
 *
 * Two passes over the view. The first plans the file: which entries go on which leaf page, the branch
 * pages above them, every page id, so the total size and the meta pages are known before the first byte
 * is sent. The second streams the pages in page-id order, reading the entries again. Only the plan (one
 * small record and the first key per page) is held in memory, never the data, so the view must yield the
 * same entries both times: pass a `Snapshot` (or a `ReadTxn` consumed inside its `view` callback).
 *
 * Layout: pages 0 and 1 are meta pages, page 2 an empty freelist, then each bucket's leaf pages followed by
 * its branch pages (buckets in name order), then the pages of the root bucket tree that names the buckets.
 * Leaves are packed full (a bbolt file compacted with fill percent 1.0); an entry bigger than a page gets a
 * page of its own with overflow pages. A bucket whose single leaf would take at most a quarter page is
 * stored inline in its parent, as bbolt itself does.
 */

/** etcd 3.4's Maintenance.Snapshot send buffer: every response but the last carries this many bytes. */
export const ETCD_SNAPSHOT_CHUNK_SIZE = 32 * 1024;

export interface BoltSnapshotOptions {
  /**
   * Append the SHA-256 of the database bytes after the database, as etcd's Maintenance.Snapshot stream and
   * `etcdctl snapshot save` files do. Default false (a plain bbolt database).
   */
  readonly appendSha256?: boolean;
  /** Bytes per yielded chunk; the last one may be shorter. Default 32 KiB (etcd's send buffer). */
  readonly chunkSize?: number;
  /** bbolt page size; default 4096, which etcd uses on linux/amd64. */
  readonly pageSize?: number;
}

/**
 * The file as a stream of chunks; iterate it (synchronously or with `for await`) to produce the bytes.
 * Each yielded chunk is a fresh buffer the consumer may keep. Iterating again writes the file again.
 */
export interface BoltSnapshotStream extends Iterable<Uint8Array>, AsyncIterable<Uint8Array> {
  /** Bytes of the bbolt database (high-water page id × page size). */
  readonly dbSize: number;
  /** Bytes the stream yields in all: `dbSize`, plus 32 when the SHA-256 is appended. */
  readonly size: number;
  /** Number of buckets and of key/value pairs written (over all buckets). */
  readonly bucketCount: number;
  readonly keyCount: number;
}

export interface BoltSnapshotWriteResult {
  readonly dbSize: number;
  /** Bytes written, including the SHA-256 when appended. */
  readonly size: number;
  /** SHA-256 of the database bytes (the value etcd appends). */
  readonly sha256: Uint8Array;
}

/** Where `writeBoltSnapshot` puts the bytes: a Node writable (backpressure respected) or a callback. */
export type SnapshotSink = Writable | ((chunk: Uint8Array) => void | Promise<void>);

/**
 * Plans the file (first pass over `view`, synchronously) and returns the stream that writes it (second
 * pass). The planning pass reads every entry; for a big store in a server prefer
 * `openBoltSnapshotStream`, which lets the event loop run while it plans.
 */
export function boltSnapshotStream(view: ReadTxn, options: BoltSnapshotOptions = {}): BoltSnapshotStream {
  const resolved = resolveOptions(options);
  return streamOf(runToEnd(planSteps(view, resolved.pageSize)), view, resolved);
}

/**
 * `boltSnapshotStream` for servers: planning gives the event loop a turn every few thousand entries,
 * so raft ticks and other requests keep flowing while a multi-gigabyte store is planned. `view` must
 * outlive the awaits: a `Snapshot`.
 */
export async function openBoltSnapshotStream(view: ReadTxn, options: BoltSnapshotOptions = {}): Promise<BoltSnapshotStream> {
  const resolved = resolveOptions(options);
  const steps = planSteps(view, resolved.pageSize);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return streamOf(step.value, view, resolved);
    await nextTurn();
  }
}

interface ResolvedOptions {
  readonly pageSize: number;
  readonly chunkSize: number;
  readonly appendSha256: boolean;
}

function resolveOptions(options: BoltSnapshotOptions): ResolvedOptions {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1024 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new RangeError(`pageSize must be a power of two from 1024 to 65536, got ${pageSize}`);
  }
  const chunkSize = options.chunkSize ?? ETCD_SNAPSHOT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer`);
  return { pageSize, chunkSize, appendSha256: options.appendSha256 ?? false };
}

/** Bytes an async consumer gets between two turns of the event loop (see `streamOf`). */
const BYTES_PER_EVENT_LOOP_TURN = 1 << 20;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function streamOf(plan: SnapshotPlan, view: ReadTxn, options: ResolvedOptions): BoltSnapshotStream {
  const { chunkSize, appendSha256 } = options;
  const dbSize = plan.highWaterPgid * plan.pageSize;

  function* chunks(): Generator<Uint8Array, void, undefined> {
    const hash = appendSha256 ? createHash("sha256") : undefined;
    let written = 0;
    for (const chunk of chunked(pages(plan, view), chunkSize)) {
      hash?.update(chunk);
      written += chunk.length;
      yield chunk;
    }
    if (written !== dbSize) {
      throw new SnapshotError("InvalidData", `wrote ${written} bytes where the plan said ${dbSize}`);
    }
    if (hash !== undefined) yield new Uint8Array(hash.digest());
  }

  return {
    dbSize,
    size: dbSize + (appendSha256 ? 32 : 0),
    bucketCount: plan.buckets.length,
    keyCount: plan.keyCount,
    [Symbol.iterator]: chunks,
    // A consumer whose writes never wait (a gRPC call with room in its buffer) would otherwise run the
    // whole file in one macrotask: give the event loop a turn every megabyte.
    async *[Symbol.asyncIterator]() {
      let sinceTurn = 0;
      for (const chunk of chunks()) {
        yield chunk;
        sinceTurn += chunk.length;
        if (sinceTurn >= BYTES_PER_EVENT_LOOP_TURN) {
          sinceTurn = 0;
          await nextTurn();
        }
      }
    },
  };
}

/**
 * Streams the snapshot of `view` (a `Snapshot`: it is read across awaits) into `sink`, which stays open
 * (the caller ends it). With `appendSha256` the bytes are exactly what `etcdctl snapshot save` stores.
 */
export async function writeBoltSnapshot(
  view: ReadTxn,
  sink: SnapshotSink,
  options: BoltSnapshotOptions = {},
): Promise<BoltSnapshotWriteResult> {
  const stream = await openBoltSnapshotStream(view, options);
  const hash = createHash("sha256");
  let remainingDb = stream.dbSize;
  let size = 0;
  for await (const chunk of stream) {
    const dbPart = Math.min(chunk.length, remainingDb);
    if (dbPart > 0) hash.update(chunk.subarray(0, dbPart));
    remainingDb -= dbPart;
    size += chunk.length;
    if (typeof sink === "function") {
      await sink(chunk);
    } else if (!sink.write(chunk)) {
      await once(sink, "drain");
    }
  }
  return { dbSize: stream.dbSize, size, sha256: new Uint8Array(hash.digest()) };
}

/**
 * Writes the snapshot to `path` the way `etcdctl snapshot save` does: into `path.part`, fsync, then
 * rename. The SHA-256 is appended unless `appendSha256: false`.
 */
export async function saveBoltSnapshotFile(
  view: ReadTxn,
  path: string,
  options: BoltSnapshotOptions = {},
): Promise<BoltSnapshotWriteResult> {
  const partPath = `${path}.part`;
  const file = await open(partPath, "w", 0o600);
  try {
    const result = await writeBoltSnapshot(view, (chunk) => file.write(chunk).then(() => undefined), {
      ...options,
      appendSha256: options.appendSha256 ?? true,
    });
    await file.sync();
    await file.close();
    await rename(partPath, path);
    return result;
  } catch (e) {
    await file.close().catch(() => undefined);
    await rm(partPath, { force: true });
    throw e;
  }
}

/** One message of etcd's Maintenance.Snapshot server stream (`SnapshotResponse` without its header). */
export interface SnapshotResponseChunk {
  /** Database bytes still to come after this message; 0 on the last data message and on the hash. */
  readonly remainingBytes: number;
  readonly blob: Uint8Array;
}

/**
 * Exactly what etcd 3.4's Maintenance.Snapshot sends: the database in 32 KiB blobs, each with
 * `remainingBytes = total − sent`, then one last message whose blob is the SHA-256 of the database.
 * `view` must be a `Snapshot` (read across awaits); close it when the generator finishes.
 */
export async function* maintenanceSnapshotResponses(
  view: ReadTxn,
  options: Pick<BoltSnapshotOptions, "pageSize"> = {},
): AsyncGenerator<SnapshotResponseChunk, void, undefined> {
  const stream = await openBoltSnapshotStream(view, { ...options, chunkSize: ETCD_SNAPSHOT_CHUNK_SIZE, appendSha256: true });
  let sent = 0;
  for await (const blob of stream) {
    if (sent < stream.dbSize) {
      sent += blob.length;
      yield { remainingBytes: stream.dbSize - sent, blob };
    } else {
      yield { remainingBytes: 0, blob };
    }
  }
}

// ---- planning (first pass) ----

interface PlannedLeaf {
  readonly pgid: number;
  /** Pages the leaf takes: 1 + its overflow count. */
  readonly span: number;
  readonly count: number;
  /** Page bytes used: header + elements + keys + values. */
  readonly bytes: number;
  readonly firstKey: Uint8Array;
}

interface PlannedBranch {
  readonly pgid: number;
  readonly span: number;
  readonly children: readonly BranchElement[];
}

interface TreePlan {
  readonly leaves: readonly PlannedLeaf[];
  /** Branch pages in page-id order (lowest level first). */
  readonly branches: readonly PlannedBranch[];
  readonly rootPgid: number;
}

interface BucketPlan {
  readonly name: string;
  readonly nameBytes: Uint8Array;
  /** The whole bucket value when the bucket is stored inline; then there is no tree. */
  readonly inlineValue: Uint8Array | undefined;
  readonly tree: TreePlan | undefined;
}

interface SnapshotPlan {
  readonly pageSize: number;
  readonly buckets: readonly BucketPlan[];
  readonly keyCount: number;
  /** The root bucket's leaf elements: one per bucket, in name order. */
  readonly rootElements: readonly LeafElement[];
  readonly rootTree: TreePlan;
  readonly highWaterPgid: number;
}

/** Page 0 and 1 are meta pages, page 2 the freelist; data pages start here. */
const FIRST_DATA_PGID = 3;
const FREELIST_PGID = 2;
/** A page's element count is a u16, and bbolt refuses 0xFFFF. */
const MAX_ELEMENTS_PER_PAGE = 0xfffe;

interface OpenLeaf {
  count: number;
  bytes: number;
  readonly firstKey: Uint8Array;
}

/** Packs elements into pages in order, starting a new page when the next element would not fit. */
class PagePacker {
  private readonly closed: OpenLeaf[] = [];
  private current: OpenLeaf | undefined;

  constructor(private readonly pageSize: number) {}

  add(key: Uint8Array, elementBytes: number): void {
    const current = this.current;
    if (current !== undefined && (current.bytes + elementBytes > this.pageSize || current.count >= MAX_ELEMENTS_PER_PAGE)) {
      this.closed.push(current);
      this.current = undefined;
    }
    const open = (this.current ??= { count: 0, bytes: PAGE_HEADER_SIZE, firstKey: key });
    open.count++;
    open.bytes += elementBytes;
  }

  /** The pages, at least one (an empty leaf when nothing was added). */
  finish(): OpenLeaf[] {
    if (this.current !== undefined) this.closed.push(this.current);
    this.current = undefined;
    if (this.closed.length === 0) this.closed.push({ count: 0, bytes: PAGE_HEADER_SIZE, firstKey: new Uint8Array() });
    return this.closed;
  }
}

class PageAllocator {
  next = FIRST_DATA_PGID;
  allocate(span: number): number {
    const pgid = this.next;
    this.next += span;
    return pgid;
  }
}

function spanOf(bytes: number, pageSize: number): number {
  return Math.max(1, Math.ceil(bytes / pageSize));
}

/** Gives the leaves their page ids, then builds branch levels above them until one page is the root. */
function planTree(openLeaves: readonly OpenLeaf[], allocator: PageAllocator, pageSize: number): TreePlan {
  const leaves: PlannedLeaf[] = openLeaves.map((leaf) => {
    const span = spanOf(leaf.bytes, pageSize);
    return { pgid: allocator.allocate(span), span, count: leaf.count, bytes: leaf.bytes, firstKey: leaf.firstKey };
  });
  const branches: PlannedBranch[] = [];
  let level: BranchElement[] = leaves.map((leaf) => ({ key: leaf.firstKey, pgid: leaf.pgid }));
  while (level.length > 1) {
    const packer = new PagePacker(pageSize);
    for (const child of level) packer.add(child.key, branchElementBytes(child.key.length));
    const groups = packer.finish();
    const next: BranchElement[] = [];
    let start = 0;
    for (const group of groups) {
      const span = spanOf(group.bytes, pageSize);
      const branch: PlannedBranch = {
        pgid: allocator.allocate(span),
        span,
        children: level.slice(start, start + group.count),
      };
      start += group.count;
      branches.push(branch);
      next.push({ key: group.firstKey, pgid: branch.pgid });
    }
    level = next;
  }
  const root = level[0];
  if (root === undefined) throw new Error("unreachable: a tree has at least one page");
  return { leaves, branches, rootPgid: root.pgid };
}

const utf8 = new TextEncoder();

function checkKey(bucket: string, key: Uint8Array, value: Uint8Array): void {
  if (key.length === 0) {
    throw new SnapshotError("InvalidData", `bucket ${JSON.stringify(bucket)} has an empty key, which bbolt cannot store`);
  }
  if (key.length > MAX_KEY_SIZE) {
    throw new SnapshotError(
      "InvalidData",
      `bucket ${JSON.stringify(bucket)} has a ${key.length}-byte key; bbolt's limit is ${MAX_KEY_SIZE}`,
    );
  }
  if (value.length > MAX_VALUE_SIZE) {
    throw new SnapshotError(
      "InvalidData",
      `bucket ${JSON.stringify(bucket)} has a ${value.length}-byte value; bbolt's limit is ${MAX_VALUE_SIZE}`,
    );
  }
}

/** Entries planned between two pauses of `planSteps` (where an async caller lets the event loop run). */
const PLAN_ENTRIES_PER_STEP = 4096;

function runToEnd<T>(steps: Generator<void, T, undefined>): T {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/** The first pass: reads every entry once and returns the plan, pausing (`yield`) now and then. */
function* planSteps(view: ReadTxn, pageSize: number): Generator<void, SnapshotPlan, undefined> {
  let sincePause = 0;
  const allocator = new PageAllocator();
  const maxInlineBytes = pageSize / 4;
  // bbolt orders buckets by the bytes of their names.
  const names = view
    .buckets()
    .map((name) => ({ name, nameBytes: utf8.encode(name) }))
    .sort((a, b) => compareBytes(a.nameBytes, b.nameBytes));
  const buckets: BucketPlan[] = [];
  let keyCount = 0;
  for (const { name, nameBytes } of names) {
    if (nameBytes.length === 0) throw new SnapshotError("InvalidData", "a bucket has an empty name, which bbolt cannot store");
    const packer = new PagePacker(pageSize);
    let inlineElements: LeafElement[] | undefined = [];
    let inlineBytes = PAGE_HEADER_SIZE;
    let previous: Uint8Array | undefined;
    for (const { key, value } of view.range(name)) {
      checkKey(name, key, value);
      if (previous !== undefined && compareBytes(previous, key) >= 0) {
        throw new SnapshotError("InvalidData", `bucket ${JSON.stringify(name)} yielded keys out of order`);
      }
      previous = key;
      if (++sincePause === PLAN_ENTRIES_PER_STEP) {
        sincePause = 0;
        yield;
      }
      const elementBytes = leafElementBytes(key.length, value.length);
      packer.add(key, elementBytes);
      keyCount++;
      if (inlineElements !== undefined) {
        inlineBytes += elementBytes;
        if (inlineBytes > maxInlineBytes) inlineElements = undefined;
        else inlineElements.push({ flags: 0, key, value });
      }
    }
    if (inlineElements !== undefined) {
      buckets.push({ name, nameBytes, inlineValue: encodeInlineBucket(inlineElements), tree: undefined });
    } else {
      buckets.push({ name, nameBytes, inlineValue: undefined, tree: planTree(packer.finish(), allocator, pageSize) });
    }
  }
  const rootElements: LeafElement[] = buckets.map((bucket) => ({
    flags: BUCKET_LEAF_FLAG,
    key: bucket.nameBytes,
    value: bucket.inlineValue ?? encodeBucketHeader(bucket.tree?.rootPgid ?? 0),
  }));
  const rootPacker = new PagePacker(pageSize);
  for (const element of rootElements) {
    rootPacker.add(element.key, leafElementBytes(element.key.length, element.value.length));
  }
  const rootTree = planTree(rootPacker.finish(), allocator, pageSize);
  return { pageSize, buckets, keyCount, rootElements, rootTree, highWaterPgid: allocator.next };
}

// ---- writing (second pass) ----

function viewChanged(bucket: string): SnapshotError {
  return new SnapshotError(
    "InvalidData",
    `bucket ${JSON.stringify(bucket)} changed while the snapshot was written; pass a consistent view (a Snapshot)`,
  );
}

/** Every page of the file, in page-id order, each as a buffer of span × pageSize bytes. */
function* pages(plan: SnapshotPlan, view: ReadTxn): Generator<Uint8Array, void, undefined> {
  const { pageSize } = plan;
  const meta: BoltMeta = {
    pageSize,
    flags: 0,
    rootPgid: plan.rootTree.rootPgid,
    rootSequence: 0n,
    freelistPgid: FREELIST_PGID,
    highWaterPgid: plan.highWaterPgid,
    txid: 2n,
  };
  // Like bbolt's Tx.WriteTo: the same meta twice, page 1 one transaction older; a txid lives on page
  // txid % 2, so bbolt's next commit (txid 3) overwrites the older page 1.
  const meta0 = new Uint8Array(pageSize);
  encodeMetaPage(meta0, 0, meta);
  yield meta0;
  const meta1 = new Uint8Array(pageSize);
  encodeMetaPage(meta1, 1, { ...meta, txid: 1n });
  yield meta1;
  const freelist = new Uint8Array(pageSize);
  writePageHeader(freelist, 0, { id: BigInt(FREELIST_PGID), flags: FREELIST_PAGE_FLAG, count: 0, overflow: 0 });
  yield freelist;

  for (const bucket of plan.buckets) {
    if (bucket.tree === undefined) continue;
    yield* dataLeafPages(bucket.name, bucket.tree, view, pageSize);
    yield* branchPages(bucket.tree, pageSize);
  }
  let next = 0;
  for (const leaf of plan.rootTree.leaves) {
    const elements = plan.rootElements.slice(next, next + leaf.count);
    next += leaf.count;
    yield leafPage(leaf, elements, pageSize);
  }
  yield* branchPages(plan.rootTree, pageSize);
}

function leafPage(leaf: PlannedLeaf, elements: readonly LeafElement[], pageSize: number): Uint8Array {
  const page = new Uint8Array(leaf.span * pageSize);
  writeLeafPage(page, 0, BigInt(leaf.pgid), leaf.span - 1, elements);
  return page;
}

function* dataLeafPages(bucket: string, tree: TreePlan, view: ReadTxn, pageSize: number): Generator<Uint8Array, void, undefined> {
  const entries = view.range(bucket);
  try {
    for (const leaf of tree.leaves) {
      const elements: LeafElement[] = [];
      let bytes = PAGE_HEADER_SIZE;
      for (let i = 0; i < leaf.count; i++) {
        const next = entries.next();
        if (next.done === true) throw viewChanged(bucket);
        const { key, value } = next.value;
        elements.push({ flags: 0, key, value });
        bytes += leafElementBytes(key.length, value.length);
      }
      const first = elements[0];
      if (bytes !== leaf.bytes || (first !== undefined && compareBytes(first.key, leaf.firstKey) !== 0)) {
        throw viewChanged(bucket);
      }
      yield leafPage(leaf, elements, pageSize);
    }
    if (entries.next().done !== true) throw viewChanged(bucket);
  } finally {
    entries.return?.();
  }
}

function* branchPages(tree: TreePlan, pageSize: number): Generator<Uint8Array, void, undefined> {
  for (const branch of tree.branches) {
    const page = new Uint8Array(branch.span * pageSize);
    writeBranchPage(page, 0, BigInt(branch.pgid), branch.span - 1, branch.children);
    yield page;
  }
}

/** Regroups `pieces` into fresh chunks of exactly `chunkSize` bytes (the last may be shorter). */
function* chunked(pieces: Iterable<Uint8Array>, chunkSize: number): Generator<Uint8Array, void, undefined> {
  let chunk = new Uint8Array(chunkSize);
  let filled = 0;
  for (const piece of pieces) {
    let offset = 0;
    while (offset < piece.length) {
      const n = Math.min(chunkSize - filled, piece.length - offset);
      chunk.set(piece.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === chunkSize) {
        yield chunk;
        chunk = new Uint8Array(chunkSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield chunk.subarray(0, filled);
}
