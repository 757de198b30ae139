import { openMemoryBackend } from "@etcd-ts/storage";
import { openMvccStore } from "./src/index.js";
const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const backend = openMemoryBackend();
const store = openMvccStore(backend);
const n = 100_000;
const value = new Uint8Array(64).fill(0x61);
const keys = Array.from({length: n}, (_, i) => b(`key/${String((i * 7919) % n).padStart(6, "0")}`));
let t = performance.now();
for (let start = 0; start < n; start += 1000) {
  store.update((batch) => { for (let i = start; i < start + 1000; i++) batch.txn((txn) => txn.put(keys[i]!, value)); });
}
console.log("puts", performance.now() - t);
t = performance.now();
for (let i = 0; i < 100_000; i++) store.range(keys[i]!, undefined);
console.log("gets", performance.now() - t);
t = performance.now();
for (let i = 0; i < 100_000; i++) backend.view(tx => tx.get("key", new Uint8Array(17)));
console.log("raw backend gets", performance.now() - t);
