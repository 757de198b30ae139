import { GrpcCode, isRpcError } from "@etcd-ts/api";
import { isStorageError } from "@etcd-ts/storage";
import type { ServiceError } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import type { Logger } from "../log.js";

/**
 * The one place errors become gRPC statuses. `RpcError`s already carry etcd's code and message; anything
 * else is a bug or an environment failure, logged here and reported without internals leaking.
 */
export function toServiceError(error: unknown, logger: Logger): Partial<ServiceError> {
  if (isRpcError(error)) return { code: error.code, details: error.message, metadata: new Metadata() };
  if (isStorageError(error)) {
    logger.error("storage failure while serving a request", { error: error.message, code: error.code });
    return { code: GrpcCode.INTERNAL, details: `etcdserver: storage: ${error.message}`, metadata: new Metadata() };
  }
  logger.error("unexpected error while serving a request", { error: error instanceof Error ? error.stack : String(error) });
  return { code: GrpcCode.UNKNOWN, details: error instanceof Error ? error.message : String(error), metadata: new Metadata() };
}
