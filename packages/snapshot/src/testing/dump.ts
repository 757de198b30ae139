import type { Backend } from "@etcd-ts/storage";
import type { BoltFile } from "../bolt-reader.js";

/** Bucket name → [key hex, value hex] pairs in key order: contents compared with deepStrictEqual. */
export type Contents = Record<string, [string, string][]>;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

export function backendContents(backend: Backend): Contents {
  return backend.view((txn) => {
    const out: Contents = {};
    for (const bucket of txn.buckets()) out[bucket] = [...txn.range(bucket)].map((e) => [hex(e.key), hex(e.value)]);
    return out;
  });
}

export function boltContents(file: BoltFile): Contents {
  const out: Contents = {};
  for (const bucket of file.buckets()) out[bucket.name] = [...bucket.entries()].map((e) => [hex(e.key), hex(e.value)]);
  return out;
}
