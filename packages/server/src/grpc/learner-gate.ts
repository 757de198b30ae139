import { RpcError } from "@etcd-ts/api";
import type { Server, ServerUnaryCall, ServiceDefinition, UntypedHandleCall, UntypedServiceImplementation, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import { toServiceError } from "../errors.js";

/**
 * etcd 3.4's interceptors for a learner: it serves only Status and serializable Range; every other
 * unary RPC and every stream is refused with `etcdserver: rpc not supported for learner` (clients then
 * go to a voting member).
 */
export function isRpcSupportedForLearner(request: unknown): boolean {
  const message = request as { $typeName?: string; serializable?: boolean } | undefined;
  switch (message?.$typeName) {
    case "etcdserverpb.StatusRequest":
      return true;
    case "etcdserverpb.RangeRequest":
      return message.serializable === true;
    default:
      return false;
  }
}

function gate(implementation: UntypedServiceImplementation, isLearner: () => boolean, logger: Logger): UntypedServiceImplementation {
  const gated: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const original = handler as (...args: unknown[]) => void;
    gated[name] = (original.length >= 2
      ? (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          if (isLearner() && !isRpcSupportedForLearner(call.request)) {
            callback(toServiceError(RpcError.of("notSupportedForLearner"), logger));
            return;
          }
          original(call, callback);
        }
      : (call: { emit(event: "error", error: unknown): boolean }) => {
          if (isLearner()) {
            call.emit("error", toServiceError(RpcError.of("notSupportedForLearner"), logger));
            return;
          }
          original(call);
        }) as UntypedHandleCall;
  }
  return gated;
}

/** The gRPC server as `addEtcdServices` sees it: every service added through it is learner-gated. */
export function withLearnerGate(server: Server, isLearner: () => boolean, logger: Logger): Server {
  return new Proxy(server, {
    get(target, property, receiver) {
      if (property === "addService") {
        return (definition: ServiceDefinition, implementation: UntypedServiceImplementation) =>
          target.addService(definition, gate(implementation, isLearner, logger));
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
