/**
 * The child process of the conformance suite's durability test. Usage:
 *   node --conditions=source --import tsx conformance-writer.ts <module-url> <export-name> <dir> [deferred]
 * Opens the store with `module[exportName]({ dir })`, then writes key i (8-byte big-endian) = value i in
 * one `update` per key, forever, printing "i\n" only after that update's promise resolved. The parent
 * kills it with SIGKILL and checks that every printed key survived. With `deferred` the store is opened
 * with `durability: "deferred"` and a key is printed once a `flush()` after its update resolved.
 */
import type { Backend, BackendOptions } from "../backend.js";
import { durabilityBucket, durabilityKey, durabilityValue } from "./conformance-data.js";

const [moduleUrl, exportName, dir, mode] = process.argv.slice(2);
const deferred = mode === "deferred";
if (moduleUrl === undefined || exportName === undefined || dir === undefined) {
  process.stderr.write("usage: conformance-writer <module-url> <export-name> <dir>\n");
  process.exit(2);
}
const mod = (await import(moduleUrl)) as Record<string, unknown>;
const open = mod[exportName];
if (typeof open !== "function") throw new Error(`${moduleUrl} has no function export ${exportName}`);
const backend = await (open as (o: BackendOptions) => Backend | Promise<Backend>)(deferred ? { dir, durability: "deferred" } : { dir });
await backend.update((txn) => txn.createBucket(durabilityBucket));
process.stdout.write("ready\n");
for (let i = 0; ; i++) {
  await backend.update((txn) => txn.put(durabilityBucket, durabilityKey(i), durabilityValue(i)));
  if (deferred) await backend.flush();
  // On Linux, writes to a pipe are synchronous in Node: once this returns the parent can read the line.
  process.stdout.write(`${i}\n`);
}
