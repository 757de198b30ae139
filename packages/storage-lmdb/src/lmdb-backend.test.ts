import { runBackendConformance } from "@etcd-ts/storage/testing";
import { openLmdbBackend } from "./lmdb-backend.js";

runBackendConformance("lmdb", (dir) => openLmdbBackend({ dir }), {
  opener: { module: new URL("./lmdb-backend.ts", import.meta.url).href, exportName: "openLmdbBackend" },
});

// Deferred durability leaves each commit's meta page unsynced until a flush: the whole contract again.
runBackendConformance("lmdb (deferred)", (dir) => openLmdbBackend({ dir, durability: "deferred" }), {
  opener: { module: new URL("./lmdb-backend.ts", import.meta.url).href, exportName: "openLmdbBackend" },
  deferred: true,
});
