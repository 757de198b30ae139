import { MEMBERS_BUCKET } from "@etcd-ts/schema";
import type { Entry, RangeOptions, ReadTxn, Snapshot } from "@etcd-ts/storage";
import { isMemberLocalRow } from "../membership/membership.js";

/**
 * A consistent view of the whole backend as the cluster's state: the same on every member, so what a
 * client saves with `etcdctl snapshot save` matches etcd's file (etcd keeps the member's own IDs in its
 * WAL, not in the backend) and what a leader ships to a follower does not carry the leader's identity.
 */
export function clusterStateSnapshot(snapshot: Snapshot): Snapshot {
  return {
    get: (bucket: string, key: Uint8Array) => (isMemberLocalRow(bucket, key) ? undefined : snapshot.get(bucket, key)),
    range: (bucket: string, options?: RangeOptions) => withoutMemberRows(bucket, snapshot.range(bucket, options)),
    buckets: () => snapshot.buckets(),
    close: () => snapshot.close(),
  };
}

function* withoutMemberRows(bucket: string, entries: IterableIterator<Entry>): IterableIterator<Entry> {
  for (const entry of entries) if (!isMemberLocalRow(bucket, entry.key)) yield entry;
}

/** Voters and learners as the view's `members` bucket lists them (the configuration at its index). */
export function confStateOf(view: ReadTxn): { voters: bigint[]; learners: bigint[] } {
  const voters: bigint[] = [];
  const learners: bigint[] = [];
  if (!view.buckets().includes(MEMBERS_BUCKET)) return { voters, learners };
  const decoder = new TextDecoder();
  for (const { value } of view.range(MEMBERS_BUCKET)) {
    const member = JSON.parse(decoder.decode(value)) as { id: string; isLearner?: boolean };
    (member.isLearner === true ? learners : voters).push(BigInt(`0x${member.id}`));
  }
  return { voters, learners };
}
