import { runBackendConformance } from "@etcd-ts/storage/testing";
import { openSqliteBackend } from "./sqlite-backend.js";

runBackendConformance("sqlite", (dir) => openSqliteBackend({ dir }), {
  opener: { module: new URL("./sqlite-backend.ts", import.meta.url).href, exportName: "openSqliteBackend" },
});
