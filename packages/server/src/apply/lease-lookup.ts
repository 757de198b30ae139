/**
 * What the KV applier needs to know about leases: whether one exists when a put names it. The Lease
 * issue implements this over its lessor; the applier never imports the lessor (no cycle).
 */
export interface LeaseLookup {
  /** True when lease `id` is granted and not yet revoked or expired, as of the entry being applied. */
  has(id: bigint): boolean;
}

/** The lookup of a member without a lessor: it knows no leases, so any put with a lease fails. */
export const noLeases: LeaseLookup = { has: () => false };
