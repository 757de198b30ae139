import { randomFillSync } from "node:crypto";

/**
 * A source of random bytes, injected so that ID choice is reproducible in tests (no global randomness).
 * `fill` overwrites every byte of `bytes`.
 */
export interface RandomSource {
  fill(bytes: Uint8Array): void;
}

/** The operating system's cryptographic random generator. */
export const cryptoRandomSource: RandomSource = {
  fill: (bytes) => {
    randomFillSync(bytes);
  },
};

/** The largest lease ID the server picks: IDs it chooses are positive int64 values, as etcd's are. */
export const MAX_LEASE_ID = (1n << 63n) - 1n;

/**
 * A random lease ID in [1, 2^63 − 1], for a LeaseGrant that asks for ID 0 ("choose one"). The server
 * picks the ID before proposing the grant, so every member applies the same ID. `isTaken` (for example
 * `lessor.has`) makes the choice skip IDs already granted; the apply still answers `LeaseExist` if another
 * grant took the ID between proposal and apply.
 */
export function randomLeaseId(random: RandomSource, isTaken?: (id: bigint) => boolean): bigint {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  for (;;) {
    random.fill(bytes);
    const id = view.getBigUint64(0, false) & MAX_LEASE_ID;
    if (id !== 0n && !(isTaken?.(id) ?? false)) return id;
  }
}
