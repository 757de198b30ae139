/** `npm run bench`: the shared storage benchmark against the SQLite engine, in a directory under the OS temp dir. */
import { formatBenchmark, runBackendBenchmark } from "@etcd-ts/storage/benchmark";
import { openSqliteBackend } from "./sqlite-backend.js";

console.log(formatBenchmark(await runBackendBenchmark((dir) => openSqliteBackend({ dir }))));
