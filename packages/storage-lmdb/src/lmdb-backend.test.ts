import { runBackendConformance } from "@etcd-ts/storage/testing";
import { openLmdbBackend } from "./lmdb-backend.js";

runBackendConformance("lmdb", (dir) => openLmdbBackend({ dir }), {
  opener: { module: new URL("./lmdb-backend.ts", import.meta.url).href, exportName: "openLmdbBackend" },
});
