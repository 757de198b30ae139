import type { InternalRaftRequest } from "@etcd-ts/api";
import type { WriteBatch } from "@etcd-ts/mvcc";
import type { RequestApplier } from "./index.js";
import type { ApplyResult } from "./types.js";
import type { Membership } from "../membership/membership.js";

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
