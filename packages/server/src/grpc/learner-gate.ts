import { isMessage } from "@bufbuild/protobuf";
import {
  RangeRequestSchema,
  RpcError,
  StatusRequestSchema,
  decorateGrpcHandlers,
  type GrpcHandlerDecorator,
  type GrpcServiceRegistrar,
} from "@etcd-ts/api";
import type { Logger } from "../log.js";
import { toServiceError } from "../errors.js";

/**
 * etcd 3.4's interceptors for a learner: it serves only Status and serializable Range; every other
 * unary RPC and every stream is refused with `etcdserver: rpc not supported for learner` (clients then
 * go to a voting member).
 */
export function isRpcSupportedForLearner(request: unknown): boolean {
  if (isMessage(request, StatusRequestSchema)) return true;
  return isMessage(request, RangeRequestSchema) && request.serializable;
}

/** Where `addEtcdServices` registers: every service added through it is learner-gated. */
export function withLearnerGate(services: GrpcServiceRegistrar, isLearner: () => boolean, logger: Logger): GrpcServiceRegistrar {
  const gate: GrpcHandlerDecorator = {
    answered: (handler) => (call, callback) => {
      // A client stream has no single request to look at: refused, as every stream is.
      if (isLearner() && !("request" in call && isRpcSupportedForLearner(call.request))) {
        callback(toServiceError(RpcError.of("notSupportedForLearner"), logger));
        return;
      }
      handler(call, callback);
    },
    streamed: (handler) => (call) => {
      if (isLearner()) {
        call.emit("error", toServiceError(RpcError.of("notSupportedForLearner"), logger));
        return;
      }
      handler(call);
    },
  };
  return {
    addService: (definition, handlers) => services.addService(definition, decorateGrpcHandlers(definition, handlers, gate)),
  };
}
