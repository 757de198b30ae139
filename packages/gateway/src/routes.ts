import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Auth, Cluster, KV, Lease, Maintenance, Watch } from "@etcd-ts/api";
import { Election, Lock } from "./lock-election.js";

/** One gateway route: an HTTP path (under /v3) and the gRPC method it forwards to. */
export interface Route {
  readonly path: string;
  readonly service: DescService;
  readonly method: DescMethod;
}

/**
 * The `google.api.http` bindings of etcd 3.4's rpc.proto, v3lock.proto and v3election.proto (all `post`,
 * `body: "*"`), in registration order.
 * Hash and HashKV are both bound to /v3/maintenance/hash; grpc-gateway keeps the first registration, so
 * that path reaches Hash, and HashKV has no HTTP route in etcd 3.4 — kept that way here.
 */
const BINDINGS: ReadonlyArray<readonly [DescService, string, string]> = [
  [KV, "Range", "/v3/kv/range"],
  [KV, "Put", "/v3/kv/put"],
  [KV, "DeleteRange", "/v3/kv/deleterange"],
  [KV, "Txn", "/v3/kv/txn"],
  [KV, "Compact", "/v3/kv/compaction"],
  [Watch, "Watch", "/v3/watch"],
  [Lease, "LeaseGrant", "/v3/lease/grant"],
  [Lease, "LeaseRevoke", "/v3/lease/revoke"],
  [Lease, "LeaseRevoke", "/v3/kv/lease/revoke"],
  [Lease, "LeaseKeepAlive", "/v3/lease/keepalive"],
  [Lease, "LeaseTimeToLive", "/v3/lease/timetolive"],
  [Lease, "LeaseTimeToLive", "/v3/kv/lease/timetolive"],
  [Lease, "LeaseLeases", "/v3/lease/leases"],
  [Lease, "LeaseLeases", "/v3/kv/lease/leases"],
  [Cluster, "MemberAdd", "/v3/cluster/member/add"],
  [Cluster, "MemberRemove", "/v3/cluster/member/remove"],
  [Cluster, "MemberUpdate", "/v3/cluster/member/update"],
  [Cluster, "MemberList", "/v3/cluster/member/list"],
  [Cluster, "MemberPromote", "/v3/cluster/member/promote"],
  [Maintenance, "Alarm", "/v3/maintenance/alarm"],
  [Maintenance, "Status", "/v3/maintenance/status"],
  [Maintenance, "Defragment", "/v3/maintenance/defragment"],
  [Maintenance, "Hash", "/v3/maintenance/hash"],
  [Maintenance, "HashKV", "/v3/maintenance/hash"],
  [Maintenance, "Snapshot", "/v3/maintenance/snapshot"],
  [Maintenance, "MoveLeader", "/v3/maintenance/transfer-leadership"],
  [Auth, "AuthEnable", "/v3/auth/enable"],
  [Auth, "AuthDisable", "/v3/auth/disable"],
  [Auth, "Authenticate", "/v3/auth/authenticate"],
  [Auth, "UserAdd", "/v3/auth/user/add"],
  [Auth, "UserGet", "/v3/auth/user/get"],
  [Auth, "UserList", "/v3/auth/user/list"],
  [Auth, "UserDelete", "/v3/auth/user/delete"],
  [Auth, "UserChangePassword", "/v3/auth/user/changepw"],
  [Auth, "UserGrantRole", "/v3/auth/user/grant"],
  [Auth, "UserRevokeRole", "/v3/auth/user/revoke"],
  [Auth, "RoleAdd", "/v3/auth/role/add"],
  [Auth, "RoleGet", "/v3/auth/role/get"],
  [Auth, "RoleList", "/v3/auth/role/list"],
  [Auth, "RoleDelete", "/v3/auth/role/delete"],
  [Auth, "RoleGrantPermission", "/v3/auth/role/grant"],
  [Auth, "RoleRevokePermission", "/v3/auth/role/revoke"],
  // etcd registers the v3lock and v3election gateways after its own six services.
  [Lock, "Lock", "/v3/lock/lock"],
  [Lock, "Unlock", "/v3/lock/unlock"],
  [Election, "Campaign", "/v3/election/campaign"],
  [Election, "Proclaim", "/v3/election/proclaim"],
  [Election, "Leader", "/v3/election/leader"],
  [Election, "Observe", "/v3/election/observe"],
  [Election, "Resign", "/v3/election/resign"],
];

function methodOf(service: DescService, name: string): DescMethod {
  const method = service.methods.find((m) => m.name === name);
  if (method === undefined) throw new Error(`${service.typeName} has no method ${name}`);
  return method;
}

/** Every route, in grpc-gateway's registration order (the first match wins). */
export const ROUTES: readonly Route[] = BINDINGS.map(([service, name, path]) => ({
  path,
  service,
  method: methodOf(service, name),
}));

const ROUTES_BY_PATH = new Map<string, Route>();
for (const route of ROUTES) if (!ROUTES_BY_PATH.has(route.path)) ROUTES_BY_PATH.set(route.path, route);

/**
 * The route for a request path as grpc-gateway's ServeMux matches it: the path is split on `/`, a `:verb`
 * suffix of the last segment is cut off (etcd's bindings have no verb, so any verb fails to match), and the
 * segments must equal a binding's literally. `undefined`: no binding (404); the caller checks the method.
 */
export function matchRoute(path: string): Route | "bad-verb" | undefined {
  const segments = path.slice(1).split("/");
  const last = segments[segments.length - 1]!;
  const colon = last.lastIndexOf(":");
  if (colon === 0) return "bad-verb";
  if (colon > 0) return undefined; // a verb that no binding declares
  return ROUTES_BY_PATH.get(path);
}
