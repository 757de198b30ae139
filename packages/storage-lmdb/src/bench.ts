/** `npm run bench`: the shared storage benchmark against the LMDB engine, in a directory under the OS temp dir. */
import { formatBenchmark, runBackendBenchmark } from "@etcd-ts/storage/benchmark";
import { openLmdbBackend } from "./lmdb-backend.js";

console.log(formatBenchmark(await runBackendBenchmark((dir) => openLmdbBackend({ dir }))));
