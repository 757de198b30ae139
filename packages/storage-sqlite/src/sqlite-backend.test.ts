import { runBackendConformance } from "@etcd-ts/storage/testing";
import { openSqliteBackend } from "./sqlite-backend.js";

runBackendConformance("sqlite", (dir) => openSqliteBackend({ dir }), {
  opener: { module: new URL("./sqlite-backend.ts", import.meta.url).href, exportName: "openSqliteBackend" },
});

// Deferred durability batches updates into one open transaction: the whole contract again in that mode.
runBackendConformance("sqlite (deferred)", (dir) => openSqliteBackend({ dir, durability: "deferred" }), {
  opener: { module: new URL("./sqlite-backend.ts", import.meta.url).href, exportName: "openSqliteBackend" },
  deferred: true,
});
