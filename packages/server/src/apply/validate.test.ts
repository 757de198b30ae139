import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { RequestOpSchema, isRpcError } from "@etcd-ts/api";
import type { RpcErrorKind } from "@etcd-ts/api";
import type { RequestOp, TxnRequest } from "@etcd-ts/api";
import { MAX_TXN_NESTING, TXN_DECODE_RECURSION_LIMIT, decodeTxnRequest, validateRequest } from "./validate.js";
import { b, cmp, del, opDel, opPut, opRange, opTxn, put, range, txn } from "../testing/kv-applier-harness.js";

function rejects(kind: RpcErrorKind, fn: () => void): void {
  assert.throws(fn, (e) => isRpcError(e, kind));
}

const validTxn = (t: TxnRequest, maxTxnOps?: number) => validateRequest({ case: "txn", value: t }, { maxTxnOps });

describe("validateRequest: single requests", () => {
  it("rejects empty keys and ignore_* with a value or lease", () => {
    rejects("emptyKey", () => validateRequest({ case: "range", value: range({}) }));
    rejects("emptyKey", () => validateRequest({ case: "put", value: put({ value: b("v") }) }));
    rejects("emptyKey", () => validateRequest({ case: "deleteRange", value: del({ rangeEnd: b("z") }) }));
    rejects("valueProvided", () => validateRequest({ case: "put", value: put({ key: b("k"), value: b("v"), ignoreValue: true }) }));
    rejects("leaseProvided", () => validateRequest({ case: "put", value: put({ key: b("k"), lease: 1n, ignoreLease: true }) }));
    validateRequest({ case: "put", value: put({ key: b("k"), ignoreValue: true, ignoreLease: true }) });
    validateRequest({ case: "range", value: range({ key: b("\0"), rangeEnd: b("\0") }) });
  });
});

describe("validateRequest: txn size and keys (etcd's checkTxnRequest)", () => {
  const puts = (n: number, prefix = "k"): RequestOp[] => Array.from({ length: n }, (_, i) => opPut({ key: b(`${prefix}${i}`) }));

  it("counts the largest of compares, success and failure against --max-txn-ops", () => {
    validTxn(txn({ success: puts(128), failure: puts(128) }));
    rejects("tooManyOps", () => validTxn(txn({ success: puts(129) })));
    rejects("tooManyOps", () => validTxn(txn({ compare: Array.from({ length: 129 }, (_, i) => cmp({ key: b(`c${i}`) })) })));
    rejects("tooManyOps", () => validTxn(txn({ success: puts(3) }), 2));
  });

  it("gives a nested txn what its parent left of the budget", () => {
    // Parent counts 10; the nested txn may have 128 - 10 = 118.
    validTxn(txn({ success: [...puts(9, "p"), opTxn({ success: puts(118, "n") })] }));
    rejects("tooManyOps", () => validTxn(txn({ success: [...puts(9, "p"), opTxn({ success: puts(119, "n") })] })));
  });

  it("rejects empty keys in compares and ops, and an empty op as keyNotFound", () => {
    rejects("emptyKey", () => validTxn(txn({ compare: [cmp({})] })));
    rejects("emptyKey", () => validTxn(txn({ failure: [opRange({})] })));
    rejects("emptyKey", () => validTxn(txn({ success: [opTxn({ success: [opDel({})] })] })));
    rejects("keyNotFound", () => validTxn(txn({ success: [create(RequestOpSchema, {})] })));
  });
});

describe("validateRequest: duplicate keys (etcd's checkIntervals)", () => {
  it("matches etcd 3.4.23 on the cases tried with etcdctl txn", () => {
    rejects("duplicateKey", () => validTxn(txn({ success: [opPut({ key: b("a") }), opDel({ key: b("a") })] })));
    rejects("duplicateKey", () => validTxn(txn({ success: [opPut({ key: b("a") }), opPut({ key: b("a") })] })));
    rejects("duplicateKey", () => validTxn(txn({ success: [opDel({ key: b("a"), rangeEnd: b("c") }), opPut({ key: b("b") })] })));
    rejects("duplicateKey", () => validTxn(txn({ success: [opDel({ key: b("a"), rangeEnd: b("b") }), opPut({ key: b("ab") })] })));
    // A from-key delete ("\0" end) is kept literally by etcd and overlaps nothing.
    validTxn(txn({ success: [opDel({ key: b("a"), rangeEnd: b("\0") }), opPut({ key: b("b") })] }));
    // The two branches are separate; an inverted range contains nothing.
    validTxn(txn({ success: [opPut({ key: b("a") })], failure: [opPut({ key: b("a") })] }));
    validTxn(txn({ success: [opPut({ key: b("a") })], failure: [opDel({ key: b("a") })] }));
    validTxn(txn({ success: [opDel({ key: b("c"), rangeEnd: b("a") }), opPut({ key: b("b") })] }));
    // Two deletes, and ranges, never conflict.
    validTxn(txn({ success: [opDel({ key: b("a") }), opDel({ key: b("a") }), opRange({ key: b("a") }), opPut({ key: b("b") })] }));
  });

  it("applies the rule across nested txns as etcd does", () => {
    // A put in a nested txn against a delete of the parent.
    rejects("duplicateKey", () => validTxn(txn({ success: [opDel({ key: b("a") }), opTxn({ success: [opPut({ key: b("a") })] })] })));
    // A parent put against a nested put or delete.
    rejects("duplicateKey", () => validTxn(txn({ success: [opPut({ key: b("a") }), opTxn({ failure: [opPut({ key: b("a") })] })] })));
    rejects("duplicateKey", () => validTxn(txn({ success: [opPut({ key: b("a") }), opTxn({ success: [opDel({ key: b("a") })] })] })));
    // The same key put in both branches of one nested txn is fine; in two nested txns it is not.
    validTxn(txn({ success: [opTxn({ success: [opPut({ key: b("a") })], failure: [opPut({ key: b("a") })] })] }));
    rejects("duplicateKey", () =>
      validTxn(txn({ success: [opTxn({ success: [opPut({ key: b("a") })] }), opTxn({ failure: [opPut({ key: b("a") })] })] })),
    );
    // etcd checks a nested txn's puts only against deletes gathered before it: a later sibling's delete
    // of the same key passes (etcd's order, kept on purpose).
    validTxn(txn({ success: [opTxn({ success: [opPut({ key: b("a") })] }), opTxn({ success: [opDel({ key: b("a") })] })] }));
    rejects("duplicateKey", () =>
      validTxn(txn({ success: [opTxn({ success: [opDel({ key: b("a") })] }), opTxn({ success: [opPut({ key: b("a") })] })] })),
    );
  });
});

describe("txn nesting: etcd's op budget, at most MAX_TXN_NESTING levels, and the gRPC decoder", () => {
  function varint(n: number): Buffer {
    const out: number[] = [];
    while (n > 127) {
      out.push((n & 127) | 128);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return Buffer.from(out);
  }
  const field = (no: number, body: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(body.length), body]);
  /**
   * TxnRequest bytes `levels` deep (each level's success op holds the next txn), built without recursion
   * in linear time: only headers come before the innermost txn. The innermost puts "k" (or is empty).
   */
  function nestedBytes(levels: number, emptyInner = false): Buffer {
    const core = emptyInner ? Buffer.alloc(0) : field(2, field(2, field(1, Buffer.from("k"))));
    const headers: Buffer[] = [];
    let length = core.length;
    for (let i = 1; i < levels; i++) {
      const op = Buffer.concat([varint((4 << 3) | 2), varint(length)]); // RequestOp.request_txn
      length += op.length;
      const txn = Buffer.concat([varint((2 << 3) | 2), varint(length)]); // TxnRequest.success
      length += txn.length;
      headers.push(op, txn);
    }
    return Buffer.concat([...headers.reverse(), core]);
  }
  const decodedValid = (levels: number, emptyInner = false, maxTxnOps?: number) =>
    validTxn(decodeTxnRequest(nestedBytes(levels, emptyInner)), maxTxnOps);

  it("with the default --max-txn-ops, accepts what etcd 3.4 accepts: 128 levels ending in a put, 129 ending in an empty txn", () => {
    decodedValid(48);
    decodedValid(49);
    decodedValid(128);
    decodedValid(129, true);
    rejects("tooManyOps", () => decodedValid(129));
    rejects("tooManyOps", () => decodedValid(130, true));
  });

  it("never more than MAX_TXN_NESTING levels, whatever --max-txn-ops allows", () => {
    decodedValid(MAX_TXN_NESTING, false, 100_000);
    rejects("tooManyOps", () => decodedValid(MAX_TXN_NESTING + 1, true, 100_000));
  });

  it("bytes nested deeper than the decoder follows are answered tooManyOps, as etcd answers them; damaged bytes still fail to decode", () => {
    rejects("tooManyOps", () => decodedValid(TXN_DECODE_RECURSION_LIMIT, false, 100_000));
    rejects("tooManyOps", () => decodedValid(20_000, false, 100_000));
    assert.throws(
      () => decodeTxnRequest(Buffer.from([0x12, 0x05, 0x22])),
      (e: Error) => !/recursion/.test(e.message) && !isRpcError(e),
    );
  });
});
