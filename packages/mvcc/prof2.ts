import { openMemoryBackend } from "@etcd-ts/storage";
import { openMvccStore } from "./src/index.js";
import { encodeRevisionKey } from "./src/revision.js";
import { decodeKeyValue, encodeKeyValue } from "./src/key-value-codec.js";
const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const backend = openMemoryBackend();
const store = openMvccStore(backend);
const n = 100_000;
const value = new Uint8Array(64).fill(0x61);
const keys = Array.from({length: n}, (_, i) => b(`key/${String((i * 7919) % n).padStart(6, "0")}`));
for (let start = 0; start < n; start += 1000) {
  store.update((batch) => { for (let i = start; i < start + 1000; i++) batch.txn((txn) => txn.put(keys[i]!, value)); });
}
function time(name: string, fn: () => void) { for (let r = 0; r < 3; r++) { const t = performance.now(); fn(); if (r == 2) console.log(name, ((performance.now() - t) / n * 1000).toFixed(2), "us/op"); } }
const idx = (store as any).index;
time("index get", () => { for (let i = 0; i < n; i++) idx.keyIndex(keys[i]!); });
time("encodeRevKey", () => { for (let i = 0; i < n; i++) encodeRevisionKey(i + 2, 0); });
time("backend view+get", () => { backend.view(tx => { for (let i = 0; i < n; i++) tx.get("key", encodeRevisionKey(i + 2, 0)); }); });
time("backend view per get", () => { for (let i = 0; i < n; i++) backend.view(tx => tx.get("key", encodeRevisionKey(i + 2, 0))); });
const enc = encodeKeyValue(keys[0]!, 5, 6, 1, value, 0n);
time("decode", () => { for (let i = 0; i < n; i++) decodeKeyValue(enc); });
time("encode", () => { for (let i = 0; i < n; i++) encodeKeyValue(keys[0]!, 5, 6, 1, value, 0n); });
time("store.range", () => { for (let i = 0; i < n; i++) store.range(keys[i]!, undefined); });
time("index get again", () => { for (let i = 0; i < n; i++) idx.keyIndex(keys[i]!); });
const sk = [...keys].sort(Buffer.compare);
time("index get sorted", () => { for (let i = 0; i < n; i++) idx.keyIndex(sk[i]!); });
