import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, toJson } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  CompactionResponseSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
  DeleteRangeResponseSchema,
  InternalRaftRequestSchema,
  KV,
  PutResponseSchema,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeResponseSchema,
  TxnResponseSchema,
  grpcServiceDefinition,
  isRpcError,
} from "@etcd-ts/api";
import type {
  CompactionResponse,
  Compare,
  DeleteRangeResponse,
  InternalRaftRequest,
  PutResponse,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import type { Client, ServiceError } from "@grpc/grpc-js";
import { haveEtcd, startEtcd, type EtcdProcess } from "@etcd-ts/test-support";
import { validateRequest } from "./validate.js";
import { Harness, b, cmp, compaction, del, opDel, opPut, opRange, opTxn, put, range, txn } from "../testing/kv-applier-harness.js";

/**
 * Differential test: the same random requests go to a real etcd (the `etcd` binary on PATH, 3.4) over
 * gRPC and to our validation + applier, and every response or error must be the same, except the
 * cluster/member IDs and raft term of the top-level header. Skipped when there is no `etcd` binary.
 */

type Unary = (req: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void;
type KvClient = Client & { Range: Unary; Put: Unary; DeleteRange: Unary; Txn: Unary; Compact: Unary };

/** A small deterministic PRNG (xorshift32). */
function prng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

const KEYS = ["a", "a1", "a2", "b", "b1", "c", "d", "e"];
const VALUES = ["", "x", "y", "z", "xx"];

/** The response as JSON with the top-level header's member-specific fields cleared. */
function normalized<D extends DescMessage>(schema: D, message: MessageShape<D>): unknown {
  const json = toJson(schema, message) as Record<string, unknown>;
  const header = json["header"] as Record<string, unknown> | undefined;
  if (header !== undefined) {
    delete header["clusterId"];
    delete header["memberId"];
    delete header["raftTerm"];
  }
  return json;
}

describe("KV applier vs etcd 3.4 (differential)", { skip: haveEtcd() ? false : "no etcd 3.4 binary on PATH" }, () => {
  let etcd: EtcdProcess | undefined;
  let client: KvClient;

  before(async () => {
    etcd = await startEtcd({ logLevel: "error" });
    const Ctor = makeGenericClientConstructor(grpcServiceDefinition(KV), "KV");
    client = new Ctor(etcd.endpoint, credentials.createInsecure()) as unknown as KvClient;
  });

  after(async () => {
    client?.close();
    await etcd?.stop();
  });

  interface Answers {
    Range: RangeResponse;
    Put: PutResponse;
    DeleteRange: DeleteRangeResponse;
    Txn: TxnResponse;
    Compact: CompactionResponse;
  }

  function call<M extends keyof Answers>(method: M, request: unknown): Promise<Answers[M]> {
    return new Promise((resolve, reject) => {
      client[method](request, (e, r) => (e ? reject(e) : resolve(r as Answers[M])));
    });
  }

  /** etcd's answer: the normalized response, or the error message. */
  async function etcdAnswer(request: InternalRaftRequest["request"]): Promise<unknown> {
    try {
      switch (request.case) {
        case "range":
          return normalized(RangeResponseSchema, await call("Range", request.value));
        case "put":
          return normalized(PutResponseSchema, await call("Put", request.value));
        case "deleteRange":
          return normalized(DeleteRangeResponseSchema, await call("DeleteRange", request.value));
        case "txn":
          return normalized(TxnResponseSchema, await call("Txn", request.value));
        case "compaction":
          return normalized(CompactionResponseSchema, await call("Compact", request.value));
        default:
          throw new Error("unexpected request");
      }
    } catch (e) {
      const se = e as ServiceError;
      if (typeof se.code === "number" && typeof se.details === "string") return `error ${se.code}: ${se.details}`;
      throw e;
    }
  }

  function ourAnswer(h: Harness, request: InternalRaftRequest["request"], readOnlyPath: boolean): unknown {
    try {
      validateRequest(request, { maxTxnOps: 128 });
      if (request.case === "range") return normalized(RangeResponseSchema, h.applier.range(request.value));
      if (request.case === "txn" && readOnlyPath && isReadOnly(request.value)) {
        return normalized(TxnResponseSchema, h.applier.readOnlyTxn(request.value));
      }
      const result = h.apply(request);
      if (!result.ok) throw result.error;
      const response = result.response;
      switch (request.case) {
        case "put":
          return normalized(PutResponseSchema, response as never);
        case "deleteRange":
          return normalized(DeleteRangeResponseSchema, response as never);
        case "txn":
          return normalized(TxnResponseSchema, response as never);
        case "compaction":
          return normalized(CompactionResponseSchema, response as never);
        default:
          throw new Error("unexpected request");
      }
    } catch (e) {
      if (isRpcError(e)) return `error ${e.code}: ${e.message}`;
      throw e;
    }
  }

  function isReadOnly(t: TxnRequest): boolean {
    return [...t.success, ...t.failure].every(
      (op) => op.request.case === "requestRange" || (op.request.case === "requestTxn" && isReadOnly(op.request.value)),
    );
  }

  it("answers 2000 random requests exactly as etcd does, across restarts of our side", async () => {
    const r = prng(20261122);
    const h = new Harness();
    let compacted = 0;
    const key = () => b(r.pick(KEYS));
    const rangeEnd = (): Uint8Array => {
      const c = r.int(4);
      if (c === 0) return new Uint8Array(0);
      if (c === 1) return Uint8Array.of(0);
      return b(r.pick(KEYS));
    };
    const revision = (): bigint => {
      const current = h.applier.currentRevision();
      const c = r.int(3);
      if (c === 0) return 0n;
      return BigInt(Math.max(0, compacted - 1 + r.int(current - compacted + 3)));
    };
    const rangeRequest = () =>
      range({
        key: key(),
        rangeEnd: rangeEnd(),
        limit: r.chance(0.3) ? BigInt(r.int(4)) : 0n,
        revision: r.chance(0.3) ? revision() : 0n,
        sortOrder: r.pick([
          RangeRequest_SortOrder.NONE,
          RangeRequest_SortOrder.NONE,
          RangeRequest_SortOrder.ASCEND,
          RangeRequest_SortOrder.DESCEND,
        ]),
        sortTarget: r.pick([
          RangeRequest_SortTarget.KEY,
          RangeRequest_SortTarget.KEY,
          RangeRequest_SortTarget.VERSION,
          RangeRequest_SortTarget.CREATE,
          RangeRequest_SortTarget.MOD,
          RangeRequest_SortTarget.VALUE,
        ]),
        keysOnly: r.chance(0.2),
        countOnly: r.chance(0.1),
        minModRevision: r.chance(0.1) ? BigInt(r.int(30)) : 0n,
        maxModRevision: r.chance(0.1) ? BigInt(r.int(30)) : 0n,
        minCreateRevision: r.chance(0.1) ? BigInt(r.int(30)) : 0n,
        maxCreateRevision: r.chance(0.1) ? BigInt(r.int(30)) : 0n,
      });
    // Inside a txn, ignore_value/ignore_lease after a from-key delete of the same key passes etcd's
    // duplicate check and then panics etcd's applier (it crashes the member); no such puts in txns.
    const putRequest = (inTxn = false) => {
      const ignoreValue = !inTxn && r.chance(0.1);
      return put({
        key: r.chance(0.02) ? new Uint8Array(0) : key(),
        value: ignoreValue && r.chance(0.7) ? new Uint8Array(0) : b(r.pick(VALUES)),
        prevKv: r.chance(0.3),
        ignoreValue,
        ignoreLease: !inTxn && r.chance(0.05),
        lease: r.chance(0.03) ? 7n : 0n,
      });
    };
    const deleteRequest = () => del({ key: key(), rangeEnd: r.chance(0.5) ? rangeEnd() : new Uint8Array(0), prevKv: r.chance(0.4) });
    const compare = (): Compare => {
      const target = r.pick([
        Compare_CompareTarget.VERSION,
        Compare_CompareTarget.CREATE,
        Compare_CompareTarget.MOD,
        Compare_CompareTarget.VALUE,
        Compare_CompareTarget.LEASE,
      ]);
      const n = BigInt(r.int(25));
      const targetUnion =
        target === Compare_CompareTarget.VALUE
          ? { case: "value" as const, value: b(r.pick(VALUES)) }
          : target === Compare_CompareTarget.VERSION
            ? { case: "version" as const, value: BigInt(r.int(4)) }
            : target === Compare_CompareTarget.CREATE
              ? { case: "createRevision" as const, value: n }
              : target === Compare_CompareTarget.MOD
                ? { case: "modRevision" as const, value: n }
                : { case: "lease" as const, value: 0n };
      return cmp({
        key: key(),
        rangeEnd: r.chance(0.2) ? rangeEnd() : new Uint8Array(0),
        target,
        result: r.pick([
          Compare_CompareResult.EQUAL,
          Compare_CompareResult.GREATER,
          Compare_CompareResult.LESS,
          Compare_CompareResult.NOT_EQUAL,
        ]),
        targetUnion,
      });
    };
    const ops = (depth: number): RequestOp[] =>
      Array.from({ length: r.int(4) }, () => {
        const c = r.int(depth < 2 ? 10 : 9);
        if (c < 3) return opRange(rangeRequest());
        if (c < 6) return opPut(putRequest(true));
        if (c < 9) return opDel(deleteRequest());
        return opTxn(txnRequest(depth + 1));
      });
    const txnRequest = (depth: number): TxnRequest =>
      txn({ compare: Array.from({ length: r.int(3) }, compare), success: ops(depth), failure: ops(depth) });

    const mismatches: string[] = [];
    for (let i = 0; i < 2000; i++) {
      // Now and then a restart of our side: the rebuilt store must go on answering as etcd does.
      // Every other one does not wait for physical compaction, which then resumes on open.
      if (i % 250 === 249) {
        if (i % 500 === 249) await h.store.compactionsDone();
        h.reopen();
      }
      const c = r.int(20);
      let request: InternalRaftRequest["request"];
      if (c < 5) request = { case: "range", value: rangeRequest() };
      else if (c < 11) request = { case: "put", value: putRequest() };
      else if (c < 13) request = { case: "deleteRange", value: deleteRequest() };
      else if (c < 19) request = { case: "txn", value: txnRequest(0) };
      else request = { case: "compaction", value: compaction({ revision: revision(), physical: r.chance(0.5) }) };
      const theirs = await etcdAnswer(request);
      const ours = ourAnswer(h, request, r.chance(0.5));
      if (request.case === "compaction" && typeof theirs !== "string") compacted = Number(request.value.revision);
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
        mismatches.push(
          `#${i} ${request.case} ${JSON.stringify(toJson(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { request })))}:\n` +
            `  etcd ${JSON.stringify(theirs)}\n  ours ${JSON.stringify(ours)}`,
        );
        if (mismatches.length >= 5) break;
      }
    }
    assert.deepEqual(mismatches, []);
  });
});
