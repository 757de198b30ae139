import type { InternalRaftRequest } from "@etcd-ts/api";
import type { WriteBatch } from "@etcd-ts/mvcc";
import type { RequestApplier } from "./apply/index.js";
import type { ApplyResult } from "./apply/types.js";
import type { Member, Membership } from "./membership.js";

/**
 * Applies `ClusterMemberAttrSetRequest`: a member's name and client URLs, published through the log
 * when it starts so that every member lists them; written with the batch that applies it.
 */
export class MemberAttributesApplier implements RequestApplier {
  constructor(private readonly membership: Membership) {}

  applies(request: InternalRaftRequest["request"]): boolean {
    return request.case === "clusterMemberAttrSet";
  }

  apply(batch: WriteBatch, request: InternalRaftRequest["request"]): ApplyResult {
    if (request.case !== "clusterMemberAttrSet") throw new Error(`not a member attribute request: ${request.case}`);
    const attributes = request.value.memberAttributes;
    this.membership.setAttributes(request.value.memberID, attributes?.name ?? "", attributes?.clientUrls ?? []);
    this.membership.writeTo(batch.backend);
    return { ok: true, response: { $typeName: "etcdserverpb.ClusterMemberAttrSetResponse" } };
  }
}

/** What a conf change carries in its context: the member it adds or updates, and the proposer's request ID. */
export interface MemberContext {
  readonly member: Member;
  readonly requestId: bigint;
  /** An AddNode that promotes an existing learner (etcd's `ConfigChangeContext.IsPromote`). */
  readonly isPromote?: boolean;
}

export function encodeMemberContext(context: MemberContext): Uint8Array {
  const m = context.member;
  return new TextEncoder().encode(
    JSON.stringify({
      id: m.id.toString(16),
      name: m.name,
      peerURLs: m.peerUrls,
      clientURLs: m.clientUrls,
      isLearner: m.isLearner,
      requestId: context.requestId.toString(16),
      ...(context.isPromote === true ? { isPromote: true } : {}),
    }),
  );
}

export function decodeMemberContext(bytes: Uint8Array): MemberContext {
  const json = JSON.parse(new TextDecoder().decode(bytes)) as {
    id: string;
    name: string;
    peerURLs: string[];
    clientURLs: string[];
    isLearner: boolean;
    requestId: string;
    isPromote?: boolean;
  };
  return {
    member: { id: BigInt(`0x${json.id}`), name: json.name, peerUrls: json.peerURLs, clientUrls: json.clientURLs, isLearner: json.isLearner },
    requestId: BigInt(`0x${json.requestId}`),
    isPromote: json.isPromote === true,
  };
}
