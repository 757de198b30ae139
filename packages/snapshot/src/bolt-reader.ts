import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { Entry } from "@etcd-ts/storage";
import { compareBytes } from "@etcd-ts/storage";
import {
  BRANCH_ELEMENT_SIZE,
  BRANCH_PAGE_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  FREELIST_COUNT_OVERFLOW,
  FREELIST_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  LEAF_PAGE_FLAG,
  META_SIZE,
  PAGE_HEADER_SIZE,
  dataView,
  decodeMetaPage,
  pageTypeName,
  readPageHeader,
} from "./bolt-format.js";
import type { BoltMeta, BranchElement, LeafElement, PageHeader } from "./bolt-format.js";
import { SnapshotError, isSnapshotError } from "./errors.js";

/**
 * Reads a bbolt database — an etcd snapshot file (trailing SHA-256 or not) or an etcd `member/snap/db` —
 * page by page, without mapping or loading the whole file: from a byte array, or from a path through
 * positioned reads. Read-only; bbolt's own checks are repeated (meta magic, version, FNV checksum; page
 * ids, types and bounds; key order) and a damaged file throws `SnapshotError` `Corrupt` naming the page.
 */

/** Deeper than any real tree (bbolt's fan-out makes 10 levels hold more than 2^53 bytes); stops cycles. */
const MAX_TREE_DEPTH = 64;
/** Page sizes tried for meta page 1 when meta page 0 is damaged and so cannot tell the page size. */
const FALLBACK_PAGE_SIZES = [DEFAULT_PAGE_SIZE, 512, 1024, 2048, 8192, 16384, 32768, 65536];

interface PageSource {
  readonly length: number;
  /** `length` bytes at `offset`; throws `Corrupt` when the file ends first. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function truncated(offset: number, length: number, fileLength: number): SnapshotError {
  return new SnapshotError("Corrupt", `file is truncated: needed bytes ${offset}..${offset + length} but the file has ${fileLength} bytes`);
}

class BytesSource implements PageSource {
  constructor(private readonly bytes: Uint8Array) {}
  get length(): number {
    return this.bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset + length > this.bytes.length) throw truncated(offset, length, this.bytes.length);
    return this.bytes.subarray(offset, offset + length);
  }
  close(): void {}
}

class FileSource implements PageSource {
  readonly length: number;
  private fd: number | undefined;
  constructor(path: string) {
    this.fd = openSync(path, "r");
    try {
      this.length = fstatSync(this.fd).size;
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }
  read(offset: number, length: number): Uint8Array {
    if (this.fd === undefined) throw new Error("bbolt file is closed");
    if (offset + length > this.length) throw truncated(offset, length, this.length);
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, offset + done);
      if (n === 0) throw truncated(offset, length, offset + done);
      done += n;
    }
    return buffer;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

interface Page {
  readonly pgid: number;
  readonly header: PageHeader;
  /** The page and its overflow pages. */
  readonly bytes: Uint8Array;
}

/** One top-level bucket of the file. */
export interface BoltBucket {
  readonly name: string;
  /** The name's bytes as stored (bbolt orders buckets by these). */
  readonly nameBytes: Uint8Array;
  /** True when the bucket's page is stored inside its parent (small buckets). */
  readonly inline: boolean;
  /** Key/value pairs in key order; keys and values are copies the caller owns. */
  entries(): IterableIterator<Entry>;
}

/** Called for every page a tree walk visits: its id and its overflow count. */
type PageVisitor = (pgid: number, header: PageHeader) => void;

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

export class BoltFile {
  /** The meta the file is read through: the valid one with the higher txid. */
  readonly meta: BoltMeta;
  /** Which meta page that is. */
  readonly metaPage: 0 | 1;
  /** What is wrong with the other meta page, if anything (bbolt then silently uses the good one). */
  readonly otherMetaProblem: string | undefined;
  /** Bytes of the database: high-water page id × page size (`etcdctl snapshot status`'s totalSize). */
  readonly dbSize: number;
  /** Bytes of the file, including anything after the database (etcd's SHA-256). */
  readonly fileSize: number;
  private readonly source: PageSource;
  private rootCache: LeafElement[] | undefined;

  private constructor(source: PageSource) {
    this.source = source;
    this.fileSize = source.length;
    const chosen = chooseMeta(source);
    this.meta = chosen.meta;
    this.metaPage = chosen.page;
    this.otherMetaProblem = chosen.otherProblem;
    const { pageSize, highWaterPgid, rootPgid, freelistPgid } = this.meta;
    this.dbSize = highWaterPgid * pageSize;
    if (highWaterPgid < 3 || rootPgid < 2 || rootPgid >= highWaterPgid) {
      throw new SnapshotError(
        "Corrupt",
        `meta page ${this.metaPage}: root page ${rootPgid} is outside the database's ${highWaterPgid} pages`,
      );
    }
    if (freelistPgid !== undefined && (freelistPgid < 2 || freelistPgid >= highWaterPgid)) {
      throw new SnapshotError(
        "Corrupt",
        `meta page ${this.metaPage}: freelist page ${freelistPgid} is outside the database's ${highWaterPgid} pages`,
      );
    }
    if (this.fileSize < this.dbSize) {
      throw new SnapshotError(
        "Corrupt",
        `file is truncated: it has ${this.fileSize} bytes but its meta page says the database is ${this.dbSize} bytes (${highWaterPgid} pages of ${pageSize})`,
      );
    }
  }

  static open(source: Uint8Array | string): BoltFile {
    const pages = typeof source === "string" ? new FileSource(source) : new BytesSource(source);
    try {
      return new BoltFile(pages);
    } catch (e) {
      pages.close();
      throw e;
    }
  }

  /** Releases the file descriptor (a no-op for byte arrays). */
  close(): void {
    this.source.close();
  }

  /** Top-level buckets in the file's (bytewise) order. */
  buckets(): BoltBucket[] {
    return this.rootElements().map((element) => {
      const name = utf8.decode(element.key);
      return {
        name,
        nameBytes: element.key.slice(),
        inline: isInline(element.value),
        entries: () => this.entriesOf(name, element.value),
      };
    });
  }

  bucketNames(): string[] {
    return this.buckets().map((bucket) => bucket.name);
  }

  /** The key/value pairs of one bucket, in key order. Throws `BucketNotFound` when it is missing. */
  entries(bucket: string): IterableIterator<Entry> {
    const element = this.findBucket(bucket);
    if (element === undefined) {
      throw new SnapshotError("BucketNotFound", `bucket ${JSON.stringify(bucket)} not found in the bbolt file`);
    }
    return this.entriesOf(bucket, element.value);
  }

  /**
   * Every leaf element of a bucket as stored, nested-bucket markers included (flag `0x01`), values not
   * copied: what bbolt's `Bucket.ForEach` sees. For checksums over the raw contents.
   */
  *elements(bucket: string): Generator<LeafElement, void, undefined> {
    const element = this.findBucket(bucket);
    if (element === undefined) {
      throw new SnapshotError("BucketNotFound", `bucket ${JSON.stringify(bucket)} not found in the bbolt file`);
    }
    yield* this.bucketElements(element.value, `bucket ${JSON.stringify(bucket)}`);
  }

  /**
   * bbolt's `Tx.Check`: every page below the high-water mark is reachable exactly once or free, every
   * reachable page is a branch or leaf page inside the file, and (ours) keys are in order. Returns the
   * problems found, empty for a sound file.
   */
  check(): string[] {
    const problems: string[] = [];
    const { highWaterPgid, freelistPgid } = this.meta;
    const freed = new Set<number>();
    const reachable = new Set<number>([0, 1]);
    const markSpan = (pgid: number, overflow: number): void => {
      for (let id = pgid; id <= pgid + overflow; id++) {
        if (reachable.has(id)) problems.push(`page ${id}: multiple references`);
        reachable.add(id);
        if (freed.has(id)) problems.push(`page ${id}: reachable freed`);
      }
    };
    try {
      if (freelistPgid !== undefined) {
        const page = this.page(freelistPgid, "freelist");
        if ((page.header.flags & FREELIST_PAGE_FLAG) === 0) {
          problems.push(`page ${freelistPgid}: freelist page has type ${pageTypeName(page.header.flags)}`);
        } else {
          for (const id of freelistIds(page)) {
            if (freed.has(id)) problems.push(`page ${id}: already freed`);
            if (id >= highWaterPgid) problems.push(`page ${id}: freed page is above the high-water mark ${highWaterPgid}`);
            freed.add(id);
          }
        }
        markSpan(freelistPgid, page.header.overflow);
      }
      // Like bbolt, a page referenced twice is reported and walked again (its keys then repeat); but a
      // sound file visits each page once, so more visits than pages means pages that refer back to
      // each other, which would be walked forever (or once per path, 2^depth times).
      let visits = 0;
      const visit: PageVisitor = (pgid, header) => {
        if (++visits > highWaterPgid) {
          throw new SnapshotError(
            "Corrupt",
            `page ${pgid}: pages are reached more often than the database has pages (${highWaterPgid}): they refer back to each other`,
          );
        }
        markSpan(pgid, header.overflow);
      };
      const checkBucket = (value: Uint8Array, context: string, depth: number): void => {
        if (depth > MAX_TREE_DEPTH)
          throw new SnapshotError("Corrupt", `${context}: buckets nested deeper than ${MAX_TREE_DEPTH} levels (a cycle?)`);
        for (const element of this.bucketElements(value, context, visit)) {
          if (element.flags & BUCKET_LEAF_FLAG) checkBucket(element.value, `${context}/${utf8.decode(element.key)}`, depth + 1);
        }
      };
      for (const element of this.walkOrdered(this.meta.rootPgid, "root bucket", visit)) {
        if ((element.flags & BUCKET_LEAF_FLAG) === 0) {
          problems.push(`root bucket: key ${JSON.stringify(utf8.decode(element.key))} is not a bucket`);
          continue;
        }
        checkBucket(element.value, `bucket ${JSON.stringify(utf8.decode(element.key))}`, 1);
      }
    } catch (e) {
      if (!isSnapshotError(e)) throw e;
      // The walk stopped here, so the pages after this one were never visited: listing them all as
      // unreachable would bury the one real problem.
      problems.push(e.message);
      return problems;
    }
    // Without a stored freelist bbolt rebuilds it from the unreachable pages, so those are free.
    if (freelistPgid !== undefined) {
      for (let id = 0; id < highWaterPgid; id++) {
        if (!reachable.has(id) && !freed.has(id)) problems.push(`page ${id}: unreachable unfreed`);
      }
    }
    return problems;
  }

  private rootElements(): LeafElement[] {
    if (this.rootCache === undefined) {
      const elements: LeafElement[] = [];
      for (const element of this.walkOrdered(this.meta.rootPgid, "root bucket")) {
        if ((element.flags & BUCKET_LEAF_FLAG) === 0) {
          throw new SnapshotError("Corrupt", `root bucket: key ${JSON.stringify(utf8.decode(element.key))} is not a bucket`);
        }
        if (element.value.length < BUCKET_HEADER_SIZE) {
          throw new SnapshotError("Corrupt", `root bucket: bucket ${JSON.stringify(utf8.decode(element.key))} has a short header`);
        }
        elements.push(element);
      }
      this.rootCache = elements;
    }
    return this.rootCache;
  }

  private findBucket(bucket: string): LeafElement | undefined {
    const nameBytes = utf8Encoder.encode(bucket);
    return this.rootElements().find((element) => compareBytes(element.key, nameBytes) === 0);
  }

  private *entriesOf(bucket: string, value: Uint8Array): Generator<Entry, void, undefined> {
    const context = `bucket ${JSON.stringify(bucket)}`;
    for (const element of this.bucketElements(value, context)) {
      if (element.flags & BUCKET_LEAF_FLAG) {
        throw new SnapshotError(
          "Unsupported",
          `${context} holds a nested bucket ${JSON.stringify(utf8.decode(element.key))}; etcd's buckets have none`,
        );
      }
      yield { key: element.key.slice(), value: element.value.slice() };
    }
  }

  /** The elements of the bucket whose value (header, maybe an inline page) is `value`. */
  private *bucketElements(value: Uint8Array, context: string, visit?: PageVisitor): Generator<LeafElement, void, undefined> {
    if (value.length < BUCKET_HEADER_SIZE) throw new SnapshotError("Corrupt", `${context}: bucket header is ${value.length} bytes`);
    const root = dataView(value).getBigUint64(0, true);
    if (root === 0n) {
      const inline = value.subarray(BUCKET_HEADER_SIZE);
      if (inline.length < PAGE_HEADER_SIZE) throw new SnapshotError("Corrupt", `${context}: inline page is ${inline.length} bytes`);
      const header = readPageHeader(inline);
      if ((header.flags & LEAF_PAGE_FLAG) === 0) {
        throw new SnapshotError("Corrupt", `${context}: inline page has type ${pageTypeName(header.flags)}, expected leaf`);
      }
      yield* checkOrder(leafElements(inline, header, `${context} (inline)`), context);
      return;
    }
    if (root > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotError("Corrupt", `${context}: root page ${root} out of range`);
    yield* this.walkOrdered(Number(root), context, visit);
  }

  private *walkOrdered(pgid: number, context: string, visit?: PageVisitor): Generator<LeafElement, void, undefined> {
    yield* checkOrder(this.walk(pgid, context, 0, new Set(), visit), context);
  }

  /**
   * The leaf elements below page `pgid`, left to right. Outside `check` (which has its own bound, see
   * there) a page met twice in one tree is refused: branch pages sharing children would otherwise be
   * walked once per path (2^depth times), and empty leaves give the key-order check nothing to catch.
   */
  private *walk(
    pgid: number,
    context: string,
    depth: number,
    seen: Set<number>,
    visit?: PageVisitor,
  ): Generator<LeafElement, void, undefined> {
    if (depth > MAX_TREE_DEPTH) throw new SnapshotError("Corrupt", `${context}: tree deeper than ${MAX_TREE_DEPTH} levels (a cycle?)`);
    if (visit === undefined) {
      if (seen.has(pgid)) throw new SnapshotError("Corrupt", `${context}: page ${pgid} is referenced more than once`);
      seen.add(pgid);
    }
    const page = this.page(pgid, context);
    visit?.(pgid, page.header);
    if (page.header.flags & LEAF_PAGE_FLAG) {
      yield* leafElements(page.bytes, page.header, `${context}: page ${pgid}`);
    } else if (page.header.flags & BRANCH_PAGE_FLAG) {
      for (const child of branchElements(page.bytes, page.header, `${context}: page ${pgid}`)) {
        yield* this.walk(child.pgid, context, depth + 1, seen, visit);
      }
    } else {
      throw new SnapshotError("Corrupt", `${context}: page ${pgid} has type ${pageTypeName(page.header.flags)}, expected branch or leaf`);
    }
  }

  private page(pgid: number, context: string): Page {
    const { pageSize, highWaterPgid } = this.meta;
    if (pgid < 2 || pgid >= highWaterPgid) {
      throw new SnapshotError("Corrupt", `${context}: page ${pgid} is out of bounds (high-water mark ${highWaterPgid})`);
    }
    const first = this.source.read(pgid * pageSize, pageSize);
    const header = readPageHeader(first);
    if (header.id !== BigInt(pgid)) {
      throw new SnapshotError("Corrupt", `${context}: page ${pgid} has id ${header.id} in its header`);
    }
    if (pgid + header.overflow >= highWaterPgid) {
      throw new SnapshotError(
        "Corrupt",
        `${context}: page ${pgid} overflows ${header.overflow} pages past the high-water mark ${highWaterPgid}`,
      );
    }
    const bytes = header.overflow === 0 ? first : this.source.read(pgid * pageSize, (header.overflow + 1) * pageSize);
    return { pgid, header, bytes };
  }
}

/** Opens a bbolt file (bytes, or a path read page by page). Close it when done with a path. */
export function readBoltFile(source: Uint8Array | string): BoltFile {
  return BoltFile.open(source);
}

function isInline(bucketValue: Uint8Array): boolean {
  return bucketValue.length >= BUCKET_HEADER_SIZE && dataView(bucketValue).getBigUint64(0, true) === 0n;
}

function chooseMeta(source: PageSource): { meta: BoltMeta; page: 0 | 1; otherProblem: string | undefined } {
  if (source.length < PAGE_HEADER_SIZE + META_SIZE) {
    throw new SnapshotError("Corrupt", `file is ${source.length} bytes, too short for a bbolt database`);
  }
  const meta0 = decodeMetaPage(source.read(0, PAGE_HEADER_SIZE + META_SIZE));
  // Meta 0 tells the page size, and so where meta 1 is; when it is damaged, look for meta 1 at the usual sizes.
  const pageSizes = "meta" in meta0 ? [meta0.meta.pageSize] : FALLBACK_PAGE_SIZES;
  // The problem reported for meta 1 is the one at the first (most likely) position tried.
  let meta1: ReturnType<typeof decodeMetaPage> | undefined;
  for (const pageSize of pageSizes) {
    if (source.length < pageSize + PAGE_HEADER_SIZE + META_SIZE) continue;
    let candidate = decodeMetaPage(source.read(pageSize, PAGE_HEADER_SIZE + META_SIZE));
    if ("meta" in candidate && candidate.meta.pageSize !== pageSize) {
      candidate = { problem: `page size ${candidate.meta.pageSize} does not match its position` };
    }
    if ("meta" in candidate) {
      meta1 = candidate;
      break;
    }
    meta1 ??= candidate;
  }
  meta1 ??= { problem: "beyond the end of the file" };
  if ("meta" in meta0 && "meta" in meta1) {
    // bbolt prefers meta 1 only when its txid is higher.
    return meta1.meta.txid > meta0.meta.txid
      ? { meta: meta1.meta, page: 1, otherProblem: undefined }
      : { meta: meta0.meta, page: 0, otherProblem: undefined };
  }
  if ("meta" in meta0) return { meta: meta0.meta, page: 0, otherProblem: `meta page 1: ${"problem" in meta1 ? meta1.problem : ""}` };
  if ("meta" in meta1) return { meta: meta1.meta, page: 1, otherProblem: `meta page 0: ${meta0.problem}` };
  throw new SnapshotError("Corrupt", `not a valid bbolt database: meta page 0: ${meta0.problem}; meta page 1: ${meta1.problem}`);
}

function leafElements(page: Uint8Array, header: PageHeader, context: string): LeafElement[] {
  const view = dataView(page);
  const elements: LeafElement[] = [];
  if (PAGE_HEADER_SIZE + header.count * LEAF_ELEMENT_SIZE > page.length) {
    throw new SnapshotError("Corrupt", `${context}: ${header.count} leaf elements do not fit the page`);
  }
  for (let i = 0; i < header.count; i++) {
    const at = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
    const flags = view.getUint32(at, true);
    const start = at + view.getUint32(at + 4, true);
    const keyEnd = start + view.getUint32(at + 8, true);
    const valueEnd = keyEnd + view.getUint32(at + 12, true);
    if (valueEnd > page.length) throw new SnapshotError("Corrupt", `${context}: leaf element ${i} runs past the end of the page`);
    elements.push({ flags, key: page.subarray(start, keyEnd), value: page.subarray(keyEnd, valueEnd) });
  }
  return elements;
}

function branchElements(page: Uint8Array, header: PageHeader, context: string): BranchElement[] {
  const view = dataView(page);
  const elements: BranchElement[] = [];
  if (header.count === 0) throw new SnapshotError("Corrupt", `${context}: branch page has no elements`);
  if (PAGE_HEADER_SIZE + header.count * BRANCH_ELEMENT_SIZE > page.length) {
    throw new SnapshotError("Corrupt", `${context}: ${header.count} branch elements do not fit the page`);
  }
  for (let i = 0; i < header.count; i++) {
    const at = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
    const start = at + view.getUint32(at, true);
    const keyEnd = start + view.getUint32(at + 4, true);
    const child = view.getBigUint64(at + 8, true);
    if (keyEnd > page.length) throw new SnapshotError("Corrupt", `${context}: branch element ${i} runs past the end of the page`);
    if (child > BigInt(Number.MAX_SAFE_INTEGER))
      throw new SnapshotError("Corrupt", `${context}: branch element ${i} points at page ${child}`);
    elements.push({ key: page.subarray(start, keyEnd), pgid: Number(child) });
  }
  return elements;
}

function* freelistIds(page: Page): Generator<number, void, undefined> {
  const view = dataView(page.bytes);
  let index = 0;
  let count = page.header.count;
  if (count === FREELIST_COUNT_OVERFLOW) {
    count = Number(view.getBigUint64(PAGE_HEADER_SIZE, true));
    index = 1;
  }
  if (PAGE_HEADER_SIZE + (index + count) * 8 > page.bytes.length) {
    throw new SnapshotError("Corrupt", `freelist: ${count} page ids do not fit page ${page.pgid}`);
  }
  for (let i = index; i < index + count; i++) {
    const id = view.getBigUint64(PAGE_HEADER_SIZE + i * 8, true);
    yield id > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(id);
  }
}

function* checkOrder(elements: Iterable<LeafElement>, context: string): Generator<LeafElement, void, undefined> {
  let previous: Uint8Array | undefined;
  for (const element of elements) {
    if (previous !== undefined && compareBytes(previous, element.key) >= 0) {
      throw new SnapshotError("Corrupt", `${context}: keys out of order`);
    }
    previous = element.key;
    yield element;
  }
}
