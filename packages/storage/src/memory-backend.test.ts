import { runBackendConformance } from "./conformance.js";
import { openMemoryBackend } from "./memory-backend.js";

runBackendConformance("memory", () => openMemoryBackend(), { persistent: false });
