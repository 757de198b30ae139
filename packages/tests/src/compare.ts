import { etcdctl, type CommandResult } from "@etcd-ts/test-support";
import { type ServerProcess } from "./processes.js";

/**
 * Side-by-side runs: the same etcdctl command against real etcd and against etcd-ts, both fresh, with
 * what legitimately differs between any two servers (IDs, raft terms/indexes, sizes, ports, timings,
 * version strings) masked. Everything else — revisions, values, errors, exit codes — must match.
 */

export interface Step {
  readonly args: readonly string[];
  readonly input?: string;
}

export function normalize(text: string, server: ServerProcess, ids: { memberId: string; clusterId: string }): string {
  let out = text;
  const dec = (hex: string) => BigInt(`0x${hex}`).toString(10);
  for (const [hex, tag] of [
    [ids.memberId, "<MEMBER_ID>"],
    [ids.clusterId, "<CLUSTER_ID>"],
  ] as const) {
    if (hex === "") continue;
    out = out.split(dec(hex)).join(tag).split(hex).join(tag);
  }
  out = out
    .split(String(server.port))
    .join("<PORT>")
    .split(String(server.peerPort))
    .join("<PEER_PORT>")
    // etcdctl's retry interceptor logs with timestamps and random IDs
    .split("\n")
    .filter((l) => !l.startsWith('{"level"'))
    .join("\n")
    .replace(/"raft_term":\d+/g, '"raft_term":<T>')
    .replace(/"RaftTerm" : \d+/g, '"RaftTerm" : <T>')
    .replace(/"(raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":\d+/g, '"$1":<N>')
    .replace(/"version":"[^"]*"/g, '"version":<V>')
    .replace(/took = [^\n]*/g, "took = <T>");
  return out;
}

/** Cluster and member ID (hex) as the server reports them. */
export function serverIds(server: ServerProcess): { memberId: string; clusterId: string } {
  const r = etcdctl(server.endpoint, ["endpoint", "status", "-w", "json"]);
  const status = JSON.parse(r.stdout) as { Status: { header: { cluster_id: number | string; member_id: number | string } } }[];
  // etcdctl prints these uint64s as JSON numbers that exceed 2^53: read them from the text instead.
  const cid = /"cluster_id":(\d+)/.exec(r.stdout)?.[1] ?? String(status[0]!.Status.header.cluster_id);
  const mid = /"member_id":(\d+)/.exec(r.stdout)?.[1] ?? String(status[0]!.Status.header.member_id);
  return { memberId: BigInt(mid).toString(16), clusterId: BigInt(cid).toString(16) };
}

export function transcript(server: ServerProcess, step: Step, ids: { memberId: string; clusterId: string }): string {
  const r: CommandResult = etcdctl(server.endpoint, step.args, step.input);
  const text = `$ etcdctl ${step.args.join(" ")}\n${r.stdout}${r.stderr}[exit ${r.code}]`;
  return normalize(text, server, ids);
}
