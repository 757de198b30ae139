/**
 * @etcd-ts/test-support — what the repository's tests share (private, never published): free ports on
 * 127.0.0.1, polling, temp dirs, the real etcd 3.4 and etcdctl, member processes and their health. What
 * only one package's tests use stays in that package's `src/testing/`.
 */
export { freePort } from "./ports.js";
export { sleep, waitFor } from "./wait.js";
export { removeDir, tempDir } from "./temp-dir.js";
export { teardown } from "./teardown.js";
export type { AfterHookHost } from "./teardown.js";
export { etcdctl, etcdctlAsync, etcdctlOutput, etcdctlTlsArgs } from "./etcdctl.js";
export type { CommandResult, EtcdctlTls } from "./etcdctl.js";
export { spawnMember, waitHealthy } from "./member-process.js";
export type { HealthOptions, MemberProcess, SpawnedMember } from "./member-process.js";
export { haveEtcd, startEtcd } from "./etcd.js";
export type { EtcdOptions, EtcdProcess } from "./etcd.js";
export {
  endpointStatus,
  healthy,
  httpHealthy,
  isLeader,
  memberIdHex,
  retryWhileUnhealthy,
  sameHashKV,
  sameRevision,
} from "./cluster-status.js";
