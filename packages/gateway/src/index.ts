/**
 * @etcd-ts/gateway — etcd 3.4's gRPC-JSON gateway: HTTP/1.1 JSON requests under /v3/ (and /v3beta/)
 * forwarded as gRPC calls to a member's own endpoint, answered as etcd's grpc-gateway answers them.
 */
export { createGateway } from "./gateway.js";
export type { Gateway, GatewayOptions } from "./gateway.js";
export { ROUTES, matchRoute } from "./routes.js";
export type { Route } from "./routes.js";
export { GatewayError, isGatewayError } from "./errors.js";
export type { GatewayErrorCode } from "./errors.js";
export { decodeMessage, encodeMessage } from "./jsonpb.js";
