import { create } from "@bufbuild/protobuf";
import {
  CompactionRequestSchema,
  CompareSchema,
  DeleteRangeRequestSchema,
  InternalRaftRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
} from "@etcd-ts/api";
import type {
  Compare,
  CompactionRequest,
  DeleteRangeRequest,
  InternalRaftRequest,
  KeyValue,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "@etcd-ts/api";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { openMvccStore } from "@etcd-ts/mvcc";
import type { MvccStore } from "@etcd-ts/mvcc";
import { openMemoryBackend } from "@etcd-ts/storage";
import type { Backend } from "@etcd-ts/storage";
import { createKvApplier } from "../apply/kv-applier.js";
import type { KvApplierOptions } from "../apply/kv-applier.js";
import type { ApplyResult } from "../apply/types.js";
import type { DefaultKvApplier } from "../apply/kv-applier.js";

/** Test helpers: an applier over the memory backend, fed one log entry per request. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const b = (s: string): Uint8Array => encoder.encode(s);
export const s = (bytes: Uint8Array): string => decoder.decode(bytes);

export const range = (init: MessageInitShape<typeof RangeRequestSchema>): RangeRequest => create(RangeRequestSchema, init);
export const put = (init: MessageInitShape<typeof PutRequestSchema>): PutRequest => create(PutRequestSchema, init);
export const del = (init: MessageInitShape<typeof DeleteRangeRequestSchema>): DeleteRangeRequest => create(DeleteRangeRequestSchema, init);
export const txn = (init: MessageInitShape<typeof TxnRequestSchema>): TxnRequest => create(TxnRequestSchema, init);
export const cmp = (init: MessageInitShape<typeof CompareSchema>): Compare => create(CompareSchema, init);
export const compaction = (init: MessageInitShape<typeof CompactionRequestSchema>): CompactionRequest =>
  create(CompactionRequestSchema, init);

export const opRange = (r: MessageInitShape<typeof RangeRequestSchema>): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestRange", value: range(r) } });
export const opPut = (r: MessageInitShape<typeof PutRequestSchema>): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestPut", value: put(r) } });
export const opDel = (r: MessageInitShape<typeof DeleteRangeRequestSchema>): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestDeleteRange", value: del(r) } });
export const opTxn = (r: MessageInitShape<typeof TxnRequestSchema>): RequestOp =>
  create(RequestOpSchema, { request: { case: "requestTxn", value: txn(r) } });

/** A KeyValue in the compact form tests compare: [key, create, mod, version, value, lease?]. */
export function kvTuple(kv: KeyValue): [string, number, number, number, string] | [string, number, number, number, string, bigint] {
  const t: [string, number, number, number, string] = [
    s(kv.key),
    Number(kv.createRevision),
    Number(kv.modRevision),
    Number(kv.version),
    s(kv.value),
  ];
  return kv.lease === 0n ? t : [...t, kv.lease];
}

export class Harness {
  readonly backend: Backend;
  store: MvccStore;
  applier: DefaultKvApplier;
  private nextIndex: number;

  constructor(
    private readonly options: KvApplierOptions = {},
    backend?: Backend,
  ) {
    this.backend = backend ?? openMemoryBackend();
    this.store = openMvccStore(this.backend);
    this.applier = createKvApplier(this.store, options);
    this.nextIndex = this.applier.consistentIndex() + 1;
  }

  /** Reopens the store and applier over the same backend (a restart). */
  reopen(): void {
    this.store.close();
    this.store = openMvccStore(this.backend);
    this.applier = createKvApplier(this.store, this.options);
    this.nextIndex = this.applier.consistentIndex() + 1;
  }

  applyAll(requests: InternalRaftRequest["request"][]): ApplyResult[] {
    const entries = requests.map((request) => ({
      index: this.nextIndex++,
      request: create(InternalRaftRequestSchema, { request }),
    }));
    return this.applier.applyBatch(entries).results;
  }

  apply(request: InternalRaftRequest["request"]): ApplyResult {
    return this.applyAll([request])[0]!;
  }

  /** Applies and returns the response, failing the test on an error result. Untyped: tests read whichever
   * response their request gets. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ok(request: InternalRaftRequest["request"]): any {
    const result = this.apply(request);
    if (!result.ok) throw new Error(`unexpected error result: ${result.error.message}`);
    return result.response;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  put(key: string, value: string, more: Omit<MessageInitShape<typeof PutRequestSchema>, "key" | "value"> = {}): any {
    return this.ok({ case: "put", value: put({ ...more, key: b(key), value: b(value) } as MessageInitShape<typeof PutRequestSchema>) });
  }

  get(key: string, more: Omit<MessageInitShape<typeof RangeRequestSchema>, "key"> = {}) {
    return this.applier.range(range({ ...more, key: b(key) } as MessageInitShape<typeof RangeRequestSchema>));
  }
}
