/**
 * Test data in etcd's backend layout: a tiny model of etcd's MVCC that turns puts and deletes into `key`
 * bucket rows (17-byte revision keys, `t` suffix for tombstones, marshaled mvccpb.KeyValue values) and the
 * live view `etcdctl get` should return. Only what the snapshot tests need; the real store is
 * `@etcd-ts/mvcc`, which this package does not depend on.
 */
import { ETCD_BUCKETS, KEY_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import type { Backend, WriteTxn } from "@etcd-ts/storage";

export interface KeyValue {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Uint8Array;
  readonly lease: number;
}

// ---- a minimal protobuf codec for mvccpb.KeyValue (fields 1..6) ----

function pushVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

export function encodeKeyValue(kv: Partial<KeyValue> & { key: Uint8Array }): Uint8Array {
  const head: number[] = [];
  const parts: Uint8Array[] = [];
  const flush = (): void => {
    parts.push(Uint8Array.from(head));
    head.length = 0;
  };
  const bytesField = (field: number, bytes: Uint8Array | undefined): void => {
    if (bytes === undefined || bytes.length === 0) return;
    head.push((field << 3) | 2);
    pushVarint(head, bytes.length);
    flush();
    parts.push(bytes);
  };
  const intField = (field: number, value: number | undefined): void => {
    if (value === undefined || value === 0) return;
    head.push(field << 3);
    pushVarint(head, value);
  };
  bytesField(1, kv.key);
  intField(2, kv.createRevision);
  intField(3, kv.modRevision);
  intField(4, kv.version);
  bytesField(5, kv.value);
  intField(6, kv.lease);
  flush();
  return Buffer.concat(parts);
}

export function decodeKeyValue(bytes: Uint8Array): KeyValue {
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined) throw new Error("truncated varint");
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 0x80;
    }
  };
  const kv = { key: new Uint8Array(), createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(), lease: 0 };
  while (at < bytes.length) {
    const tag = varint();
    const field = tag >>> 3;
    if ((tag & 7) === 2) {
      const length = varint();
      const value = bytes.slice(at, at + length);
      at += length;
      if (field === 1) kv.key = value;
      else if (field === 5) kv.value = value;
    } else {
      const value = varint();
      if (field === 2) kv.createRevision = value;
      else if (field === 3) kv.modRevision = value;
      else if (field === 4) kv.version = value;
      else if (field === 6) kv.lease = value;
    }
  }
  return kv;
}

/** etcd's 17-byte revision key (8-byte BE main, `_`, 8-byte BE sub), plus `t` for a tombstone. */
export function revisionKey(main: number, sub: number, tombstone = false): Uint8Array {
  const bytes = new Uint8Array(tombstone ? 18 : 17);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(main), false);
  bytes[8] = 0x5f;
  view.setBigUint64(9, BigInt(sub), false);
  if (tombstone) bytes[17] = 0x74;
  return bytes;
}

const utf8 = new TextEncoder();

/**
 * A history of single-operation transactions, as etcd numbers them: revision 1 is the empty store, each
 * put or delete takes the next main revision with sub 0.
 */
export class EtcdHistory {
  revision = 1;
  /** Rows of the `key` bucket in revision order. */
  readonly rows: { key: Uint8Array; value: Uint8Array }[] = [];
  /** The live keys, as `etcdctl get` returns them. */
  readonly live = new Map<string, KeyValue>();

  put(key: string, value: Uint8Array | string): void {
    this.revision++;
    const keyBytes = utf8.encode(key);
    const previous = this.live.get(key);
    const kv: KeyValue = {
      key: keyBytes,
      createRevision: previous?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (previous?.version ?? 0) + 1,
      value: typeof value === "string" ? utf8.encode(value) : value,
      lease: 0,
    };
    this.live.set(key, kv);
    this.rows.push({ key: revisionKey(this.revision, 0), value: encodeKeyValue(kv) });
  }

  delete(key: string): void {
    if (!this.live.has(key)) throw new Error(`delete of missing key ${key}`);
    this.revision++;
    this.live.delete(key);
    this.rows.push({ key: revisionKey(this.revision, 0, true), value: encodeKeyValue({ key: utf8.encode(key) }) });
  }

  /** Writes every etcd bucket, the `key` rows and `meta`'s consistent_index into `txn`. */
  writeTo(txn: WriteTxn, consistentIndex: number): void {
    for (const bucket of ETCD_BUCKETS) txn.createBucket(bucket);
    for (const row of this.rows) txn.put(KEY_BUCKET, row.key, row.value);
    writeConsistentIndex(txn, consistentIndex);
  }
}

/** Deterministic bytes (a linear congruential generator), so failures reproduce. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[i] = 0x20 + ((state >>> 24) % 95);
  }
  return bytes;
}

/**
 * The history the etcd tests use: 300 keys, a quarter rewritten several times, some deleted (and one
 * recreated), and values from empty to 20 KiB (several over a page). Printable values, so that etcdctl's
 * JSON round-trips them.
 */
export function sampleHistory(): EtcdHistory {
  const history = new EtcdHistory();
  for (let i = 0; i < 300; i++) {
    const size = i % 50 === 7 ? 5000 + i * 50 : i % 3 === 0 ? 0 : 10 + (i % 40);
    history.put(`/registry/item/${String(i).padStart(4, "0")}`, patternBytes(size, i));
  }
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 300; i += 4) history.put(`/registry/item/${String(i).padStart(4, "0")}`, `round ${round} of ${i}`);
  }
  for (let i = 1; i < 300; i += 10) history.delete(`/registry/item/${String(i).padStart(4, "0")}`);
  history.put("/registry/item/0001", "recreated");
  history.put("big", patternBytes(20000, 99));
  return history;
}

export async function populate(backend: Backend, history: EtcdHistory, consistentIndex = 1234): Promise<void> {
  await backend.update((txn) => history.writeTo(txn, consistentIndex));
}
