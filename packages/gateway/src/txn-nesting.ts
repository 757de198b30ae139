/**
 * How deep a txn the gateway forwards. jsonpb decodes nesting as deep as Go's JSON depth limit allows
 * (a txn about 5000 levels deep), but protobuf-es encodes and decodes messages recursively, so a txn
 * nested ~1000 levels deep overflows the stack while grpc-js serializes it (500 "Request message
 * serialization failure"). No member takes such a txn: etcd's op budget (`--max-txn-ops`, 128 by
 * default) allows `--max-txn-ops` + 1 levels and etcd-ts' server at most 256, both answering
 * "etcdserver: too many operations in txn request" — so past `MAX_FORWARDED_TXN_NESTING` the gateway
 * answers that itself.
 */
import { fromBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import type { RequestOp, TxnRequest } from "@etcd-ts/api";

/**
 * The deepest txn forwarded (the outermost txn is level 1): twice the server's bound, and about half of
 * what protobuf-es' recursive encoder survives (~1000–1400 levels, depending on the stack already in use).
 */
export const MAX_FORWARDED_TXN_NESTING = 512;

/**
 * The protobuf decode recursion limit for answers: a txn answer nests two messages per level (the
 * TxnResponse and its ResponseOp) and a range answer two more below. protobuf-es' default (100) refuses
 * the answer to a txn ~50 levels deep, which etcd answers 200.
 */
const RESPONSE_RECURSION_LIMIT = 2 * MAX_FORWARDED_TXN_NESTING + 8;

/** A gRPC response deserializer whose recursion limit fits the answer to any txn the gateway forwards. */
export function responseDeserializer(schema: DescMessage): (bytes: Buffer) => Message {
  return (bytes) => fromBinary(schema, bytes, { recursionLimit: RESPONSE_RECURSION_LIMIT });
}

/**
 * True if the txn nests deeper than `MAX_FORWARDED_TXN_NESTING` (through `request_txn` in its success or
 * failure ops). Walks on an explicit stack: the message may be thousands of levels deep.
 *
 * Contract: a member answers such a txn tooManyOps unless its checks, in their depth-first order, fail
 * earlier on something shallower (an empty key, an op without a request); those rarer answers are not
 * reproduced, the gateway answers tooManyOps.
 */
export function nestsTooDeep(txn: TxnRequest): boolean {
  const stack: Array<{ readonly txn: TxnRequest; readonly level: number }> = [{ txn, level: 1 }];
  while (stack.length > 0) {
    const { txn: current, level } = stack.pop()!;
    if (level > MAX_FORWARDED_TXN_NESTING) return true;
    const push = (op: RequestOp): void => {
      if (op.request.case === "requestTxn") stack.push({ txn: op.request.value, level: level + 1 });
    };
    current.success.forEach(push);
    current.failure.forEach(push);
  }
  return false;
}
