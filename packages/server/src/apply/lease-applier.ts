import { create } from "@bufbuild/protobuf";
import { LeaseGrantResponseSchema, LeaseRevokeResponseSchema, LeaseCheckpointResponseSchema, type InternalRaftRequest } from "@etcd-ts/api";
import { isLeaseError, type Lessor } from "@etcd-ts/lease";
import type { WriteBatch } from "@etcd-ts/mvcc";
import { toRpcError } from "../errors.js";
import type { ApplyResult } from "./types.js";
import type { RequestApplier } from "./index.js";

/**
 * Applies the lease requests of the log — LeaseGrant, LeaseRevoke (with all attached keys deleted in
 * one revision), LeaseCheckpoint — inside the batch's backend transaction, so lease state, the KV
 * changes and the consistent index commit together.
 */
export class LeaseApplier implements RequestApplier {
  constructor(private readonly lessor: Lessor) {}

  applies(request: InternalRaftRequest["request"]): boolean {
    return request.case === "leaseGrant" || request.case === "leaseRevoke" || request.case === "leaseCheckpoint";
  }

  apply(batch: WriteBatch, request: InternalRaftRequest["request"]): ApplyResult {
    try {
      switch (request.case) {
        case "leaseGrant": {
          const info = this.lessor.grant(batch.backend, request.value.ID, request.value.TTL);
          return {
            ok: true,
            response: create(LeaseGrantResponseSchema, {
              ID: info.id,
              TTL: BigInt(info.ttl),
              header: { revision: BigInt(batch.revision) },
            }),
          };
        }
        case "leaseRevoke": {
          this.lessor.revoke(batch.backend, request.value.ID, {
            deleteKeys: (keys) => {
              if (keys.length === 0) return;
              batch.txn((txn) => {
                for (const key of keys) txn.deleteRange(key, undefined);
              });
            },
          });
          return { ok: true, response: create(LeaseRevokeResponseSchema, { header: { revision: BigInt(batch.revision) } }) };
        }
        case "leaseCheckpoint": {
          for (const cp of request.value.checkpoints) this.lessor.checkpoint(batch.backend, cp.ID, cp.remainingTTL);
          return { ok: true, response: create(LeaseCheckpointResponseSchema, { header: { revision: BigInt(batch.revision) } }) };
        }
        default:
          throw new Error(`not a lease request: ${request.case}`);
      }
    } catch (error) {
      const refusal = isLeaseError(error) ? toRpcError(error) : undefined;
      if (refusal !== undefined) return { ok: false, error: refusal };
      throw error;
    }
  }
}
