/**
 * The bbolt on-disk format (bbolt v1.3.x, the version etcd 3.4 links), as far as a writer and a reader of
 * whole databases need it. All integers are little-endian (bbolt writes its structs in host order, and
 * every platform etcd ships for is little-endian).
 *
 * A file is a sequence of pages of `pageSize` bytes; page N starts at N × pageSize. Every page starts with
 * a 16-byte header: id u64, flags u16, count u16, overflow u32 (the page continues over `overflow` more
 * pages, which have no header of their own).
 * - Pages 0 and 1 are meta pages (the header, then the 64-byte meta below). A writer alternates between
 *   them, so a reader takes the valid one with the higher txid.
 * - The freelist page lists free page ids (u64 each); a count of 0xFFFF means the real count is the first
 *   u64.
 * - Leaf pages hold `count` 16-byte elements {flags u32, pos u32, ksize u32, vsize u32}, then the keys and
 *   values; `pos` is the offset of the key from the element's own start.
 * - Branch pages hold `count` 16-byte elements {pos u32, ksize u32, pgid u64}; each key is the first key of
 *   the child page it points to.
 * - The meta page's root bucket is a B+tree whose leaf elements are buckets (element flag 0x01); a bucket
 *   value starts with a 16-byte header {root pgid u64, sequence u64}. Root 0 means "inline": the bucket's
 *   only leaf page follows the header inside the value itself.
 */

import { fnv1a64 } from "./checksums.js";

export const BOLT_MAGIC = 0xed0cdaed;
export const BOLT_VERSION = 2;
/** The page size etcd's bbolt files use on linux/amd64 (the OS page size). */
export const DEFAULT_PAGE_SIZE = 4096;

export const PAGE_HEADER_SIZE = 16;
export const LEAF_ELEMENT_SIZE = 16;
export const BRANCH_ELEMENT_SIZE = 16;
export const BUCKET_HEADER_SIZE = 16;
/** Bytes of the meta struct up to (not including) its checksum: what the FNV-1a 64 covers. */
export const META_CHECKSUMMED_SIZE = 56;
export const META_SIZE = 64;

export const BRANCH_PAGE_FLAG = 0x01;
export const LEAF_PAGE_FLAG = 0x02;
export const META_PAGE_FLAG = 0x04;
export const FREELIST_PAGE_FLAG = 0x10;

/** Leaf element flag: the value is a bucket header (plus an inline page), not user data. */
export const BUCKET_LEAF_FLAG = 0x01;

/** Freelist count value meaning "the real count is in the first u64 of the page body". */
export const FREELIST_COUNT_OVERFLOW = 0xffff;
/** A meta's freelist pgid when the freelist is not written to disk (bbolt's NoFreelistSync). */
export const NO_FREELIST_PGID = 0xffffffffffffffffn;

/** bbolt refuses longer keys (`ErrKeyTooLarge`). */
export const MAX_KEY_SIZE = 32768;
/** bbolt refuses longer values (`ErrValueTooLarge`). */
export const MAX_VALUE_SIZE = 2 ** 31 - 2;

/** The meta struct of a meta page, decoded. Page ids are numbers (every real file is far below 2^53 bytes). */
export interface BoltMeta {
  readonly pageSize: number;
  readonly flags: number;
  /** Page id of the root bucket's root page (the tree whose leaves name the buckets). */
  readonly rootPgid: number;
  readonly rootSequence: bigint;
  /** Page id of the freelist page, or `undefined` when the freelist is not stored (NoFreelistSync). */
  readonly freelistPgid: number | undefined;
  /** High-water mark: the number of pages in use; the database is `highWaterPgid × pageSize` bytes. */
  readonly highWaterPgid: number;
  readonly txid: bigint;
}

export interface PageHeader {
  readonly id: bigint;
  readonly flags: number;
  readonly count: number;
  readonly overflow: number;
}

export function readPageHeader(bytes: Uint8Array, offset = 0): PageHeader {
  const view = dataView(bytes);
  return {
    id: view.getBigUint64(offset, true),
    flags: view.getUint16(offset + 8, true),
    count: view.getUint16(offset + 10, true),
    overflow: view.getUint32(offset + 12, true),
  };
}

export function writePageHeader(bytes: Uint8Array, offset: number, header: PageHeader): void {
  const view = dataView(bytes);
  view.setBigUint64(offset, header.id, true);
  view.setUint16(offset + 8, header.flags, true);
  view.setUint16(offset + 10, header.count, true);
  view.setUint32(offset + 12, header.overflow, true);
}

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function pageTypeName(flags: number): string {
  if (flags & BRANCH_PAGE_FLAG) return "branch";
  if (flags & LEAF_PAGE_FLAG) return "leaf";
  if (flags & META_PAGE_FLAG) return "meta";
  if (flags & FREELIST_PAGE_FLAG) return "freelist";
  return `unknown<${flags.toString(16).padStart(2, "0")}>`;
}

/** Writes a whole meta page (header + meta + checksum) for page `pageId` (0 or 1) into `page`. */
export function encodeMetaPage(page: Uint8Array, pageId: 0 | 1, meta: BoltMeta): void {
  writePageHeader(page, 0, { id: BigInt(pageId), flags: META_PAGE_FLAG, count: 0, overflow: 0 });
  const view = dataView(page);
  const m = PAGE_HEADER_SIZE;
  view.setUint32(m, BOLT_MAGIC, true);
  view.setUint32(m + 4, BOLT_VERSION, true);
  view.setUint32(m + 8, meta.pageSize, true);
  view.setUint32(m + 12, meta.flags, true);
  view.setBigUint64(m + 16, BigInt(meta.rootPgid), true);
  view.setBigUint64(m + 24, meta.rootSequence, true);
  view.setBigUint64(m + 32, meta.freelistPgid === undefined ? NO_FREELIST_PGID : BigInt(meta.freelistPgid), true);
  view.setBigUint64(m + 40, BigInt(meta.highWaterPgid), true);
  view.setBigUint64(m + 48, meta.txid, true);
  view.setBigUint64(m + 56, fnv1a64(page.subarray(m, m + META_CHECKSUMMED_SIZE)), true);
}

export type MetaDecodeResult = { readonly meta: BoltMeta } | { readonly problem: string };

/**
 * Decodes and validates the meta struct of a meta page the way bbolt's `meta.validate` does: magic, then
 * version, then checksum (a zero checksum is accepted, as bbolt does, for files from before checksums).
 */
export function decodeMetaPage(page: Uint8Array): MetaDecodeResult {
  if (page.length < PAGE_HEADER_SIZE + META_SIZE) return { problem: "file too short for a meta page" };
  const view = dataView(page);
  const m = PAGE_HEADER_SIZE;
  const magic = view.getUint32(m, true);
  if (magic !== BOLT_MAGIC) {
    return { problem: `bad magic 0x${magic.toString(16).padStart(8, "0")} (not a bbolt database)` };
  }
  const version = view.getUint32(m + 4, true);
  if (version !== BOLT_VERSION) return { problem: `unsupported bbolt format version ${version}` };
  const checksum = view.getBigUint64(m + 56, true);
  if (checksum !== 0n) {
    const actual = fnv1a64(page.subarray(m, m + META_CHECKSUMMED_SIZE));
    if (actual !== checksum) {
      return { problem: `checksum mismatch (stored ${hex64(checksum)}, computed ${hex64(actual)})` };
    }
  }
  const pageSize = view.getUint32(m + 8, true);
  const freelist = view.getBigUint64(m + 32, true);
  const rootPgid = safePgid(view.getBigUint64(m + 16, true));
  const highWaterPgid = safePgid(view.getBigUint64(m + 40, true));
  const freelistPgid = freelist === NO_FREELIST_PGID ? undefined : safePgid(freelist);
  if (rootPgid === undefined || highWaterPgid === undefined || (freelist !== NO_FREELIST_PGID && freelistPgid === undefined)) {
    return { problem: "page id out of range" };
  }
  if (pageSize < 512 || pageSize > 1 << 26 || (pageSize & (pageSize - 1)) !== 0) {
    return { problem: `implausible page size ${pageSize}` };
  }
  return {
    meta: {
      pageSize,
      flags: view.getUint32(m + 12, true),
      rootPgid,
      rootSequence: view.getBigUint64(m + 24, true),
      freelistPgid,
      highWaterPgid,
      txid: view.getBigUint64(m + 48, true),
    },
  };
}

function safePgid(value: bigint): number | undefined {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function hex64(value: bigint): string {
  return `0x${value.toString(16).padStart(16, "0")}`;
}

/** One element of a leaf page (or of an inline bucket's page). */
export interface LeafElement {
  readonly flags: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** One element of a branch page: the first key of the child page and its id. */
export interface BranchElement {
  readonly key: Uint8Array;
  readonly pgid: number;
}

/** Bytes a leaf element takes on its page: the element header, the key and the value. */
export function leafElementBytes(keyLength: number, valueLength: number): number {
  return LEAF_ELEMENT_SIZE + keyLength + valueLength;
}

export function branchElementBytes(keyLength: number): number {
  return BRANCH_ELEMENT_SIZE + keyLength;
}

/**
 * Writes a leaf page (header, elements, data) at `offset` in `target`, which must have room for
 * `PAGE_HEADER_SIZE + Σ leafElementBytes`. `overflow` is the header's overflow count.
 */
export function writeLeafPage(target: Uint8Array, offset: number, id: bigint, overflow: number, elements: readonly LeafElement[]): void {
  writePageHeader(target, offset, { id, flags: LEAF_PAGE_FLAG, count: elements.length, overflow });
  const view = dataView(target);
  let data = offset + PAGE_HEADER_SIZE + LEAF_ELEMENT_SIZE * elements.length;
  elements.forEach((element, i) => {
    const at = offset + PAGE_HEADER_SIZE + LEAF_ELEMENT_SIZE * i;
    view.setUint32(at, element.flags, true);
    view.setUint32(at + 4, data - at, true);
    view.setUint32(at + 8, element.key.length, true);
    view.setUint32(at + 12, element.value.length, true);
    target.set(element.key, data);
    data += element.key.length;
    target.set(element.value, data);
    data += element.value.length;
  });
}

export function writeBranchPage(
  target: Uint8Array,
  offset: number,
  id: bigint,
  overflow: number,
  elements: readonly BranchElement[],
): void {
  writePageHeader(target, offset, { id, flags: BRANCH_PAGE_FLAG, count: elements.length, overflow });
  const view = dataView(target);
  let data = offset + PAGE_HEADER_SIZE + BRANCH_ELEMENT_SIZE * elements.length;
  elements.forEach((element, i) => {
    const at = offset + PAGE_HEADER_SIZE + BRANCH_ELEMENT_SIZE * i;
    view.setUint32(at, data - at, true);
    view.setUint32(at + 4, element.key.length, true);
    view.setBigUint64(at + 8, BigInt(element.pgid), true);
    target.set(element.key, data);
    data += element.key.length;
  });
}

/** A bucket value that points at a root page (not inline). */
export function encodeBucketHeader(rootPgid: number, sequence = 0n): Uint8Array {
  const bytes = new Uint8Array(BUCKET_HEADER_SIZE);
  const view = dataView(bytes);
  view.setBigUint64(0, BigInt(rootPgid), true);
  view.setBigUint64(8, sequence, true);
  return bytes;
}

/** A bucket value holding the bucket inline: a header with root 0, then its one leaf page. */
export function encodeInlineBucket(elements: readonly LeafElement[], sequence = 0n): Uint8Array {
  let size = PAGE_HEADER_SIZE;
  for (const e of elements) size += leafElementBytes(e.key.length, e.value.length);
  const bytes = new Uint8Array(BUCKET_HEADER_SIZE + size);
  dataView(bytes).setBigUint64(8, sequence, true);
  writeLeafPage(bytes, BUCKET_HEADER_SIZE, 0n, 0, elements);
  return bytes;
}
