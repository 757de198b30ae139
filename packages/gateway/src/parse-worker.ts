/**
 * The program of a decode thread (see decode-pool.ts): a request's JSON value in, the protobuf binary of
 * its message out — or the answer the event loop's own decode would give (Go's error text, or the txn
 * nesting refusal), so the reply does not depend on which thread decoded the body.
 */
import { parentPort } from "node:worker_threads";
import { toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { TxnRequestSchema, type TxnRequest } from "@etcd-ts/api";
import { isJsonDecodeError } from "./errors.js";
import { runToEnd } from "./go-json.js";
import { decodeMessageSteps } from "./jsonpb.js";
import { ROUTES } from "./routes.js";
import { nestsTooDeep } from "./txn-nesting.js";
import type { DecodeJob, DecodeReply } from "./decode-pool.js";

const schemas = new Map<string, DescMessage>(ROUTES.map((route) => [route.method.input.typeName, route.method.input]));

function decode(job: DecodeJob): DecodeReply {
  const schema = schemas.get(job.typeName);
  if (schema === undefined) return { id: job.id, internal: `no route takes ${job.typeName}` };
  let message: Message;
  try {
    message = runToEnd(decodeMessageSteps(schema, job.json, true));
  } catch (error) {
    if (isJsonDecodeError(error)) return { id: job.id, error: error.message };
    return { id: job.id, internal: String(error) };
  }
  if (schema === TxnRequestSchema && nestsTooDeep(message as TxnRequest)) return { id: job.id, tooManyOps: true };
  try {
    return { id: job.id, encoded: toBinary(schema, message) };
  } catch (error) {
    // The event loop decodes it again and lets grpc-js answer the failure as it would.
    return { id: job.id, internal: String(error) };
  }
}

parentPort?.on("message", (job: DecodeJob) => {
  const reply = decode(job);
  parentPort!.postMessage(reply, "encoded" in reply ? [reply.encoded.buffer as ArrayBuffer] : []);
});
