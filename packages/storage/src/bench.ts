/** `npm run bench`: the shared storage benchmark against the in-memory engine (a ceiling for the others). */
import { formatBenchmark, runBackendBenchmark } from "./benchmark.js";
import { openMemoryBackend } from "./memory-backend.js";

console.log(formatBenchmark(await runBackendBenchmark(() => openMemoryBackend())));
